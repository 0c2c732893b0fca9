// Package notify owns analysts' notification scripts and their delivery: the script contract,
// the runner (child process with limits and the user's own DuckDB database), run requests as
// events in the pipeline's log, schedules and table dependencies, cooldowns, and the channels
// (Telegram bot, desktop app over WebSocket) with every delivery recorded in the user's inbox.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/schedule"
	"github.com/ai-data-analyst/analyst/store"
)

// TopicScriptRequested carries one run request of one script; ConsumerScripts runs them.
const (
	TopicScriptRequested = "notify.script.requested"
	ConsumerScripts      = "notify-scripts"
	metaUser             = "notify_user" // message metadata: runs of one user go one at a time
)

// Triggers of a script run.
const (
	TriggerSchedule = "schedule"
	TriggerTable    = "table"
	TriggerManual   = "manual"
)

// Results of a run, as the portal and the bot show them.
const (
	ResultNotified     = "notified"
	ResultNoAlert      = "no alert"
	ResultCooldown     = "cooldown"
	ResultError        = "error"
	ResultNotDelivered = "not delivered"
)

// ScriptRequested asks for one run of one user's script. Its RunID is the request id, which is
// deterministic for table and schedule triggers, so a request published twice runs once.
// Header.Table stays empty: a script run is not a stage of a sync run.
type ScriptRequested struct {
	pipeline.Header
	User      string `json:"user"`
	Script    string `json:"script"`
	Trigger   string `json:"trigger"`
	SourceRun string `json:"source_run,omitempty"`   // the sync run that published SourceTable
	Source    string `json:"source_table,omitempty"` // the published table
	ReplyChat int64  `json:"reply_chat,omitempty"`   // the Telegram chat that asked for a manual run
}

func (ScriptRequested) Topic() string { return TopicScriptRequested }

// Options configure a Service.
type Options struct {
	Config *config.Config
	DB     *bolt.DB
	Users  *store.Users
	Policy *access.Policy
	Logger *slog.Logger
	Runner *Runner // nil: defaults under the instance's data folder
}

// Service runs scripts and delivers what they report.
type Service struct {
	Config   *config.Config
	Users    *store.Users
	Policy   *access.Policy
	State    *store.Notifications
	Scripts  *Scripts
	Runner   *Runner
	Logger   *slog.Logger
	Now      func() time.Time
	ImageDir string

	Telegram *Telegram // nil when no bot is configured
	Desktop  *Desktop  // nil when no JWT secret is configured

	mu       sync.Mutex
	pub      message.Publisher
	channels []Channel
	sched    *schedule.Scheduler
}

// New opens the notification state and prepares the runner.
func New(o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	st, err := store.NewNotifications(o.DB)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(o.Config.Paths.DataDir, "notifications")
	s := &Service{
		Config: o.Config, Users: o.Users, Policy: o.Policy, State: st, Logger: o.Logger, Now: time.Now,
		Scripts: NewScripts(filepath.Join(root, "scripts")), ImageDir: filepath.Join(root, "images"), Runner: o.Runner,
	}
	if s.Runner == nil {
		s.Runner = &Runner{}
	}
	if s.Runner.ParquetRoot == "" {
		s.Runner.ParquetRoot = o.Config.Paths.Parquet
	}
	if s.Runner.Instance == "" {
		s.Runner.Instance = o.Config.Instance.Instance.Name
	}
	return s, nil
}

// AddChannel adds a delivery channel.
func (s *Service) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels = append(s.channels, c)
}

// Register consumes run requests on the router and publishes new ones through it. Up to two
// users' scripts run at once; one user's scripts run one at a time.
func (s *Service) Register(r *pipeline.Router) {
	s.mu.Lock()
	s.pub = r.Publisher()
	s.mu.Unlock()
	r.HandleWith(ConsumerScripts, TopicScriptRequested, pipeline.SubscriberOptions{
		Concurrency: 2,
		Key:         func(md message.Metadata) string { return md.Get(metaUser) },
	}, s.handle)
}

// request publishes a run request.
func (s *Service) request(req ScriptRequested) error {
	s.mu.Lock()
	pub := s.pub
	s.mu.Unlock()
	if pub == nil {
		return errors.New("notifications are not running")
	}
	req.Version, req.Time = 1, s.Now().UTC()
	msg, err := pipeline.NewMessage(req)
	if err != nil {
		return err
	}
	msg.Metadata.Set(metaUser, req.User)
	return pub.Publish(TopicScriptRequested, msg)
}

func requestID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "n" + hex.EncodeToString(sum[:12])
}

// QueueForTable queues a run of every script that declares a dependency on table, of every
// enabled user who may see it and has not muted the script. It returns "user/script" for each.
// Request ids derive from the sync run, so calling it again for the same run queues nothing new.
func (s *Service) QueueForTable(runID, table string) ([]string, error) {
	t, ok := s.Config.Catalogue.Table(table)
	if !ok {
		return nil, nil
	}
	users, err := s.Users.List()
	if err != nil {
		return nil, err
	}
	var queued []string
	for _, u := range users {
		if u.Disabled || !s.Policy.CanSee(u, t) {
			continue
		}
		scripts, _, err := s.Scripts.List(u.Email)
		if err != nil {
			return queued, err
		}
		states, err := s.State.Scripts(u.Email)
		if err != nil {
			return queued, err
		}
		for _, sc := range scripts {
			if !sc.DependsOn(t.Name) || states[sc.Name].Muted {
				continue
			}
			req := ScriptRequested{User: u.Email, Script: sc.Name, Trigger: TriggerTable, SourceRun: runID, Source: t.Name}
			req.RunID = requestID("table", runID, t.Name, u.Email, sc.Name)
			if err := s.request(req); err != nil {
				return queued, err
			}
			queued = append(queued, u.Email+"/"+sc.Name)
		}
	}
	return queued, nil
}

// RunNow queues a manual run (no cooldown) and returns its request id. replyChat, when set, is
// the Telegram chat told about a run that sends nothing.
func (s *Service) RunNow(user, name string, replyChat int64) (string, error) {
	if _, err := s.Scripts.Load(user, name); err != nil {
		return "", err
	}
	req := ScriptRequested{User: user, Script: name, Trigger: TriggerManual, ReplyChat: replyChat}
	req.RunID = "n" + strings.ToLower(watermill.NewULID())
	return req.RunID, s.request(req)
}

// handle runs one requested script unless the request ran to the end before.
func (s *Service) handle(msg *message.Message) ([]pipeline.Event, error) {
	var req ScriptRequested
	if err := pipeline.Decode(msg, &req); err != nil {
		return nil, pipeline.Permanent(err)
	}
	run, err := s.State.BeginRequest(req.RunID, s.Now())
	if err != nil || !run {
		return nil, err
	}
	s.execute(msg.Context(), req)
	return nil, s.State.FinishRequest(req.RunID, s.Now())
}

// execute runs the script, applies the cooldown, delivers and records the outcome.
func (s *Service) execute(ctx context.Context, req ScriptRequested) {
	log := s.Logger.With("user", req.User, "script", req.Script, "trigger", req.Trigger, "request", req.RunID)
	user, err := s.Users.Get(req.User)
	if err != nil || user.Disabled {
		log.Info("script run skipped: the user is gone or disabled")
		return
	}
	sc, err := s.Scripts.Load(req.User, req.Script)
	if errors.Is(err, store.ErrNotFound) {
		log.Info("script run skipped: the script was removed")
		return
	}
	state, serr := s.State.Script(req.User, req.Script)
	if serr != nil {
		log.Error("read script state", "error", serr)
	}
	if state.Muted && req.Trigger != TriggerManual {
		return
	}
	var out Outcome
	if err != nil {
		out.Err = err // a header that does not parse
	} else {
		out = s.Runner.Run(ctx, Run{Script: sc, User: req.User, Tables: s.Policy.Visible(user), Trigger: req.Trigger, Table: req.Source})
	}
	now := s.Now()
	result, problem := s.outcome(ctx, req, state, out, now)
	if problem != "" {
		log.Warn("notification script", "result", result, "problem", problem)
	} else {
		log.Info("notification script", "result", result, "duration", out.Duration.Round(time.Millisecond))
	}
	_, err = s.State.UpdateScript(req.User, req.Script, func(st *ScriptState) {
		st.LastRun, st.LastTrigger, st.LastResult, st.LastError = now.UTC(), req.Trigger, result, problem
		st.LastDuration = out.Duration.Seconds()
		if result == ResultNotified && req.Trigger != TriggerManual {
			st.LastSent = now.UTC()
		}
	})
	if err != nil {
		log.Error("record script state", "error", err)
	}
	if req.ReplyChat != 0 && result != ResultNotified && s.Telegram != nil {
		text := fmt.Sprintf("`%s`: %s", req.Script, result)
		if problem != "" {
			text += "\n" + problem
		}
		if err := s.Telegram.SendText(ctx, req.ReplyChat, text, nil); err != nil {
			log.Warn("telegram reply", "error", err)
		}
	}
}

// ScriptState is the recorded state of a script (an alias, so callers need not import store).
type ScriptState = store.ScriptState

// outcome turns a run into a result and, for alerts, a delivery. problem is the visible error.
func (s *Service) outcome(ctx context.Context, req ScriptRequested, state ScriptState, out Outcome, now time.Time) (result, problem string) {
	r := out.Result
	switch {
	case out.Err != nil:
		return ResultError, out.Err.Error()
	case !r.Notify:
		return ResultNoAlert, ""
	case r.Title == "" && r.Message == "" && out.Image == nil:
		msg := `"notify" is true but there is no title, message or image to send`
		if out.Warning != "" {
			msg += " (" + out.Warning + ")"
		}
		return ResultError, msg
	}
	if cd := ParseCooldown(r.Cooldown); req.Trigger != TriggerManual && !state.LastSent.IsZero() && now.Sub(state.LastSent) < cd {
		return ResultCooldown, ""
	}
	note := store.Notification{ID: req.RunID, User: req.User, Script: req.Script, Trigger: req.Trigger,
		Title: r.Title, Message: r.Message, Time: now.UTC()}
	if out.Image != nil {
		note.Image = req.RunID + out.ImageExt
		err := store.WriteFileAtomic(filepath.Join(s.ImageDir, note.Image), 0o600, func(w io.Writer) error {
			_, err := w.Write(out.Image)
			return err
		})
		if err != nil {
			s.Logger.Error("store notification image", "error", err)
			note.Image = ""
		}
	}
	note, err := s.State.AddNotification(note)
	if err != nil {
		return ResultNotDelivered, "inbox: " + err.Error()
	}
	delivered, failures := s.deliver(ctx, note)
	problem = strings.Join(failures, "; ")
	if out.Warning != "" {
		problem = strings.TrimPrefix(problem+"; "+out.Warning, "; ")
	}
	if !delivered {
		return ResultNotDelivered, problem
	}
	return ResultNotified, problem
}

// deliver sends a notification on every channel at once; a slow or failing channel never holds
// up another. It reports whether at least one channel took it (or none is linked, so the inbox
// is where it goes) and the failures. Channels that took it before (a redelivered request) are
// not asked again.
func (s *Service) deliver(ctx context.Context, note store.Notification) (bool, []string) {
	s.mu.Lock()
	channels := append([]Channel(nil), s.channels...)
	s.mu.Unlock()
	type res struct {
		name   string
		status Status
	}
	results := make(chan res, len(channels))
	for _, c := range channels {
		if prev := note.Channels[c.Name()]; prev != "" && Status(prev).OK() {
			results <- res{c.Name(), Status(prev)}
			continue
		}
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			st := c.Deliver(cctx, Delivery{Note: note, ImagePath: s.ImagePath(note)})
			if err := s.State.SetChannelStatus(note.ID, c.Name(), string(st)); err != nil {
				s.Logger.Error("record delivery", "channel", c.Name(), "error", err)
			}
			results <- res{c.Name(), st}
		}()
	}
	ok, linked := false, false
	var failures []string
	for range channels {
		r := <-results
		switch {
		case r.status.OK():
			ok, linked = true, true
		case r.status == StatusNotLinked:
		default:
			linked = true
			failures = append(failures, r.name+": "+string(r.status))
		}
	}
	sort.Strings(failures)
	return ok || !linked, failures
}

// ImagePath is where a notification's image is kept ("" when it has none).
func (s *Service) ImagePath(note store.Notification) string {
	if note.Image == "" {
		return ""
	}
	return filepath.Join(s.ImageDir, note.Image)
}

// ScriptInfo is a script with its state, as the portal and the API list them.
type ScriptInfo struct {
	*Script
	State    ScriptState `json:"state"`
	Error    string      `json:"error,omitempty"` // a header that does not parse
	Schedule string      `json:"effective_schedule,omitempty"`
	NextRun  time.Time   `json:"next_run,omitzero"`
}

// List returns a user's scripts with their states and next scheduled run.
func (s *Service) List(user string) ([]ScriptInfo, error) {
	scripts, errs, err := s.Scripts.List(user)
	if err != nil {
		return nil, err
	}
	states, err := s.State.Scripts(user)
	if err != nil {
		return nil, err
	}
	out := []ScriptInfo{}
	for _, sc := range scripts {
		st, ok := states[sc.Name]
		if !ok {
			st = ScriptState{User: user, Name: sc.Name}
		}
		info := ScriptInfo{Script: sc, State: st, Schedule: effectiveSchedule(sc, st)}
		if e := errs[sc.Name]; e != nil {
			info.Error = e.Error()
		}
		s.mu.Lock()
		if s.sched != nil && info.Schedule != "" && !st.Muted {
			info.NextRun = s.sched.Next(jobName(user, sc.Name))
		}
		s.mu.Unlock()
		out = append(out, info)
	}
	return out, nil
}

func effectiveSchedule(sc *Script, st ScriptState) string {
	if st.ScheduleSet {
		return st.Schedule
	}
	return sc.Schedule
}

// Put stores an uploaded script and (re)schedules it.
func (s *Service) Put(user, name string, content []byte) (*Script, error) {
	sc, err := s.Scripts.Put(user, name, content)
	if err != nil {
		return nil, err
	}
	s.reschedule(user, name)
	return sc, nil
}

// Delete removes a script, its schedule and its state.
func (s *Service) Delete(user, name string) error {
	if err := s.Scripts.Delete(user, name); err != nil {
		return err
	}
	s.reschedule(user, name)
	return s.State.DeleteScript(user, name)
}

// Settings changes a script's mute flag and schedule ("" for none, nil to leave it).
func (s *Service) Settings(user, name string, muted *bool, sched *string) (ScriptState, error) {
	if _, err := s.Scripts.Load(user, name); err != nil {
		return ScriptState{}, err
	}
	if sched != nil && strings.TrimSpace(*sched) != "" {
		if _, err := schedule.Parse(*sched); err != nil {
			return ScriptState{}, err
		}
	}
	st, err := s.State.UpdateScript(user, name, func(st *ScriptState) {
		if muted != nil {
			st.Muted = *muted
		}
		if sched != nil {
			st.Schedule, st.ScheduleSet = strings.TrimSpace(*sched), true
		}
	})
	if err == nil {
		s.reschedule(user, name)
	}
	return st, err
}

// ForgetUser removes a removed user's scripts and notification state.
func (s *Service) ForgetUser(user string) error {
	scripts, _, _ := s.Scripts.List(user)
	for _, sc := range scripts {
		s.Scripts.Delete(user, sc.Name)
		s.reschedule(user, sc.Name)
	}
	return s.State.ForgetNotificationUser(user)
}

func jobName(user, script string) string { return "notify:" + user + "/" + script }

// never is the schedule of a job that no longer runs (the scheduler cannot remove jobs).
type never struct{}

func (never) Next(time.Time) time.Time { return time.Time{} }
func (never) String() string           { return "never" }

// Schedule registers every script's schedule on sched and keeps it up to date as scripts and
// settings change.
func (s *Service) Schedule(sched *schedule.Scheduler) error {
	s.mu.Lock()
	s.sched = sched
	s.mu.Unlock()
	users, err := s.Users.List()
	if err != nil {
		return err
	}
	for _, u := range users {
		scripts, _, err := s.Scripts.List(u.Email)
		if err != nil {
			return err
		}
		for _, sc := range scripts {
			s.reschedule(u.Email, sc.Name)
		}
	}
	return nil
}

// reschedule sets a script's job from its file and state (or stops it).
func (s *Service) reschedule(user, name string) {
	s.mu.Lock()
	sched := s.sched
	s.mu.Unlock()
	if sched == nil {
		return
	}
	var spec schedule.Schedule = never{}
	if sc, err := s.Scripts.Load(user, name); err == nil {
		st, _ := s.State.Script(user, name)
		if eff := effectiveSchedule(sc, st); eff != "" && !st.Muted {
			if p, err := schedule.Parse(eff); err == nil {
				spec = p
			}
		}
	}
	sched.Add(jobName(user, name), spec, func(ctx context.Context) {
		// One request per script and minute: a second process or a restart within the
		// minute publishes the same id, which runs once.
		due := s.Now().UTC().Truncate(time.Minute)
		req := ScriptRequested{User: user, Script: name, Trigger: TriggerSchedule}
		req.RunID = requestID("schedule", user, name, due.Format(time.RFC3339))
		if err := s.request(req); err != nil {
			s.Logger.Error("queue scheduled script", "user", user, "script", name, "error", err)
		}
	})
}
