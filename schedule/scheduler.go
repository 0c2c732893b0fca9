package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// maxWait bounds one sleep of Run so a wall-clock jump (suspend, NTP step) is noticed within it.
const maxWait = time.Minute

// Scheduler runs named jobs when their schedules say so. A job still running when it is due
// again is skipped (and logged), never started twice. Runs missed while the process was down or
// busy are not caught up one by one: the job runs once and continues from the current time.
type Scheduler struct {
	logger  *slog.Logger
	now     func() time.Time
	maxWait time.Duration

	mu   sync.Mutex
	jobs map[string]*job
	wake chan struct{} // Add signals Run to recompute its sleep
	wg   sync.WaitGroup
}

type job struct {
	sched   Schedule
	fn      func(ctx context.Context)
	next    time.Time
	running bool
}

// New returns a scheduler reading the time from now (time.Now when nil).
func New(logger *slog.Logger, now func() time.Time) *Scheduler {
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Scheduler{logger: logger, now: now, maxWait: maxWait, jobs: map[string]*job{}, wake: make(chan struct{}, 1)}
}

// Add registers fn to run on s under name. Adding a name again replaces its schedule and
// function; a run already in progress finishes and still blocks an overlapping start.
func (s *Scheduler) Add(name string, sched Schedule, fn func(ctx context.Context)) {
	s.mu.Lock()
	j, ok := s.jobs[name]
	if !ok {
		j = &job{}
		s.jobs[name] = j
	}
	j.sched, j.fn = sched, fn
	j.next = sched.Next(s.now())
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns when the named job runs next, or the zero time for an unknown name.
func (s *Scheduler) Next(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[name]; ok {
		return j.next
	}
	return time.Time{}
}

// Run starts due jobs until ctx is cancelled, then waits for the running ones to return.
// Jobs get ctx, so they see the cancellation.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
		now := s.now()
		wait := s.runDue(ctx, now).Sub(now)
		if wait > s.maxWait || wait <= 0 {
			wait = s.maxWait
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// runDue starts every job due at now and returns the earliest next run time (zero if no jobs).
func (s *Scheduler) runDue(ctx context.Context, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var earliest time.Time
	for name, j := range s.jobs {
		if j.next.IsZero() {
			continue // the schedule never fires again
		}
		if !j.next.After(now) {
			if j.running {
				s.logger.Warn("scheduled job still running; this run is skipped", "job", name, "due", j.next)
			} else {
				j.running = true
				s.wg.Add(1)
				go s.run(ctx, name, j, j.fn)
			}
			j.next = j.sched.Next(now)
		}
		if !j.next.IsZero() && (earliest.IsZero() || j.next.Before(earliest)) {
			earliest = j.next
		}
	}
	return earliest
}

func (s *Scheduler) run(ctx context.Context, name string, j *job, fn func(context.Context)) {
	defer s.wg.Done()
	defer func() {
		// A panicking job must not take the server down nor stay "running" for ever.
		if r := recover(); r != nil {
			s.logger.Error("scheduled job panicked", "job", name, "panic", fmt.Sprint(r))
		}
		s.mu.Lock()
		j.running = false
		s.mu.Unlock()
	}()
	s.logger.Debug("scheduled job starting", "job", name)
	fn(ctx)
}
