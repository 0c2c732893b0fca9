package portal

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/catalog"
	"github.com/ai-data-analyst/analyst/config"
)

// The catalog as JSON: what analysts and their AI assistants read before they query. Every
// answer is filtered by what the caller may see; a hidden table is a 404 like a missing one.
func (s *server) catalogAPIRoutes(api *mux.Router) {
	api.Handle("/catalog", signedIn(s.catalogJSON)).Methods(http.MethodGet)
	api.Handle("/catalog/profile/{table}", signedIn(s.profileJSON)).Methods(http.MethodGet)
	api.Handle("/metrics", signedIn(s.metricsJSON)).Methods(http.MethodGet)
	api.Handle("/metrics/{category}/{name}", signedIn(s.metricJSON)).Methods(http.MethodGet)
}

// canSeeFor is the visibility predicate of the request's user.
func (s *server) canSeeFor(r *http.Request) func(config.Table) bool {
	user := UserFrom(r.Context())
	return func(t config.Table) bool { return s.Policy.CanSee(user, t) }
}

func (s *server) catalogJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.catalog.Catalog(s.canSeeFor(r)))
}

func (s *server) profileJSON(w http.ResponseWriter, r *http.Request) {
	p, ok := s.catalog.Profile(mux.Vars(r)["table"], s.canSeeFor(r))
	if !ok {
		writeError(w, http.StatusNotFound, "no such table")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *server) metricsJSON(w http.ResponseWriter, r *http.Request) {
	list, err := s.catalog.Metrics(s.canSeeFor(r))
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []catalog.MetricSummary{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) metricJSON(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	m, err := s.catalog.Metric(v["category"], v["name"], s.canSeeFor(r))
	switch {
	case errors.Is(err, catalog.ErrInvalidMetricPath):
		writeError(w, http.StatusBadRequest, "invalid metric path")
	case errors.Is(err, catalog.ErrMetricNotFound):
		writeError(w, http.StatusNotFound, "no such metric")
	case err != nil:
		s.fail(w, err)
	default:
		writeJSON(w, http.StatusOK, m)
	}
}
