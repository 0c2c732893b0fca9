package portal

import (
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ai-data-analyst/analyst/store"
)

// metrics is GET /metrics (admins; Prometheus can send a bearer token): HTTP traffic, runs,
// rows and sizes of tables, stage durations, pipeline lag and the poison queue. The registry
// belongs to this server, so several portals (tests) do not collide.
type metrics struct {
	s        *server
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

var (
	descRuns      = prometheus.NewDesc("analyst_runs", "Recent runs (last 500) by status.", []string{"status"}, nil)
	descRows      = prometheus.NewDesc("analyst_table_rows", "Rows of a table at its last sync.", []string{"table"}, nil)
	descBytes     = prometheus.NewDesc("analyst_table_bytes", "Parquet bytes of a table at its last sync.", []string{"table"}, nil)
	descLastSync  = prometheus.NewDesc("analyst_table_last_sync_timestamp_seconds", "When a table last synced.", []string{"table"}, nil)
	descStage     = prometheus.NewDesc("analyst_stage_duration_seconds", "Durations of pipeline stages in recent runs.", []string{"stage"}, nil)
	descLag       = prometheus.NewDesc("analyst_pipeline_lag_messages", "Messages a handler has not acknowledged yet.", []string{"handler"}, nil)
	descPoison    = prometheus.NewDesc("analyst_poison_pending_messages", "Failed messages waiting for a replay.", nil, nil)
	stageBuckets  = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800}
	httpBuckets   = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
	metricsRecent = 500
)

func newMetrics(s *server) *metrics {
	m := &metrics{s: s, reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "analyst_http_requests_total", Help: "HTTP requests by route, method and status."},
		[]string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "analyst_http_request_duration_seconds", Help: "HTTP request durations by route.", Buckets: httpBuckets},
		[]string{"route"})
	m.reg.MustRegister(m.requests, m.duration, m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descRows, descBytes, descLastSync, descStage, descLag, descPoison} {
		ch <- d
	}
}

// Collect reads the state at scrape time.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.s
	if runs, err := s.Runs.List(metricsRecent); err == nil {
		count := map[string]float64{store.RunQueued: 0, store.RunRunning: 0, store.RunSucceeded: 0, store.RunFailed: 0}
		stages := map[string][]float64{}
		for _, run := range runs {
			count[run.Status]++
			for _, t := range run.Tables {
				for _, st := range t.Stages {
					if st.Done {
						stages[st.Name] = append(stages[st.Name], st.Duration)
					}
				}
			}
		}
		for status, n := range count {
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, n, status)
		}
		for name, ds := range stages {
			buckets := map[float64]uint64{}
			sum := 0.0
			for _, d := range ds {
				sum += d
				for _, b := range stageBuckets {
					if d <= b {
						buckets[b]++
					}
				}
			}
			ch <- prometheus.MustNewConstHistogram(descStage, uint64(len(ds)), sum, buckets, name)
		}
	} else {
		s.Logger.Error("metrics: runs", "error", err)
	}
	if state, err := store.LoadSyncState(filepath.Join(s.Config.Paths.Metadata, "sync_state.json")); err == nil {
		for _, t := range s.Config.Catalogue.Tables {
			if ts, ok := state.Tables[t.ID]; ok {
				ch <- prometheus.MustNewConstMetric(descRows, prometheus.GaugeValue, float64(ts.Rows), t.Name)
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(ts.Bytes), t.Name)
				ch <- prometheus.MustNewConstMetric(descLastSync, prometheus.GaugeValue, float64(ts.LastSync.Unix()), t.Name)
			}
		}
	}
	if lags, err := s.lags(); err == nil {
		for _, l := range lags {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.Lag), l.Handler)
		}
	}
	if n, err := s.poisonPending(); err == nil && s.Replayer != nil {
		ch <- prometheus.MustNewConstMetric(descPoison, prometheus.GaugeValue, float64(n))
	}
}

// observe counts requests and their durations by route template (not by raw path, which would
// give every table and run its own series).
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "other"
		if cr := mux.CurrentRoute(r); cr != nil {
			if t, err := cr.GetPathTemplate(); err == nil {
				route = t
			}
		}
		s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush keeps server-sent events streaming through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
