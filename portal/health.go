package portal

import (
	"net/http"
	"os"
	"time"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// stageTopics are the pipeline's handlers (each its own consumer group) and what they consume.
var stageTopics = []struct{ Handler, Topic string }{
	{"ingest", pipeline.TopicSyncRequested},
	{"transform", pipeline.TopicTableExtracted},
	{"profile", pipeline.TopicTableConverted},
	{"publish", pipeline.TopicTableProfiled},
	{"notify", pipeline.TopicTablePublished},
}

const (
	lagLimit       = 10000 // lag is counted up to this
	lagUnhealthy   = 1000
	diskUnhealthy  = 90.0 // percent used
	jiraStaleAfter = 48 * time.Hour
)

type handlerLag struct {
	Handler string `json:"handler"`
	Topic   string `json:"topic"`
	Lag     int    `json:"lag"`
}

// lags counts, per handler, the messages of its topic it has not acknowledged.
func (s *server) lags() ([]handlerLag, error) {
	if s.Lags == nil {
		return nil, nil
	}
	var out []handlerLag
	for _, st := range stageTopics {
		n, err := s.Lags.Lag(st.Handler, st.Topic, lagLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, handlerLag{Handler: st.Handler, Topic: st.Topic, Lag: n})
	}
	return out, nil
}

func (s *server) poisonPending() (int, error) {
	if s.Replayer == nil {
		return 0, nil
	}
	p, err := s.Replayer.List(true)
	return len(p), err
}

type diskUsage struct {
	Path        string  `json:"path"`
	UsedPercent float64 `json:"used_percent"`
	FreeBytes   uint64  `json:"free_bytes"`
	TotalBytes  uint64  `json:"total_bytes"`
	Healthy     bool    `json:"healthy"`
	Error       string  `json:"error,omitempty"`
}

// health is GET /health (admins): store, pipeline lag per handler, poison queue, disk,
// schedules and the Jira intake. 200 when healthy, 503 when degraded.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	healthy := true
	out := map[string]any{"time": time.Now().UTC()}

	st := map[string]any{"healthy": true}
	if s.DB != nil {
		st["path"] = s.DB.Path()
		if info, err := os.Stat(s.DB.Path()); err == nil {
			st["size_bytes"] = info.Size()
		}
	}
	if _, err := s.Runs.List(1); err != nil {
		st["healthy"], st["error"], healthy = false, err.Error(), false
	}
	out["store"] = st

	pl := map[string]any{"backend": s.Config.Instance.Pipeline.Backend, "healthy": true}
	if lags, err := s.lags(); err != nil {
		pl["healthy"], pl["error"], healthy = false, err.Error(), false
	} else {
		pl["handlers"] = lags
		for _, l := range lags {
			if l.Lag >= lagUnhealthy {
				pl["healthy"], healthy = false, false
			}
		}
	}
	if n, err := s.poisonPending(); err == nil {
		pl["poison_pending"] = n
	}
	out["pipeline"] = pl

	var disks []diskUsage
	seen := map[uint64]bool{}
	for _, p := range []string{s.Config.Paths.DataDir, s.Config.Paths.Home} {
		d, dev := diskOf(p)
		if seen[dev] && d.Error == "" {
			continue
		}
		seen[dev] = true
		d.Healthy = d.Error == "" && d.UsedPercent < diskUnhealthy
		healthy = healthy && d.Healthy
		disks = append(disks, d)
	}
	out["disk"] = disks

	rows, err := s.tableRows(UserFrom(r.Context()))
	if err == nil {
		var scheds []scheduleView
		for _, t := range rows {
			if t.Schedule != "" {
				scheds = append(scheds, scheduleView{Table: t.Name, Schedule: t.Schedule, Next: t.NextSync, LastSync: t.LastSync, Stale: t.Stale})
			}
		}
		out["schedules"] = scheds
	}

	j := s.jiraStatus()
	jira := map[string]any{"configured": j.Configured, "healthy": true}
	if j.LastWebhook != nil {
		age := time.Since(*j.LastWebhook)
		jira["last_webhook"], jira["hours_ago"] = j.LastWebhook.UTC(), int(age.Hours())
		if j.Configured && age > jiraStaleAfter {
			jira["healthy"], healthy = false, false
		}
	}
	out["jira"] = jira

	status := http.StatusOK
	out["status"] = "healthy"
	if !healthy {
		out["status"], status = "degraded", http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}
