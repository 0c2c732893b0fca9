// Package schedule owns when things run: it parses the schedule syntax of data_description.md
// ("every 6h", "daily 07:00,13:00 Europe/Prague", cron expressions) and runs named jobs when they
// are due, never two runs of the same job at once.
package schedule

import (
	"fmt"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // zone names work on hosts and containers without a zoneinfo database

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest interval "every" accepts; syncing more often only burns API quota.
const MinInterval = time.Minute

// Schedule says when a job runs next.
type Schedule interface {
	// Next returns the first run time strictly after after.
	Next(after time.Time) time.Time
	// String returns the spec the schedule was parsed from.
	String() string
}

// Parse reads a schedule spec:
//
//	every 6h                      a Go duration of at least 1m, aligned to UTC midnight
//	daily 07:00,13:00,18:00       wall-clock times, UTC
//	daily 07:00 Europe/Prague     wall-clock times in a zone
//	30 6 * * 1-5                  a 5-field cron expression (UTC unless CRON_TZ= is given)
//	@hourly, @daily, ...          cron descriptors
func Parse(spec string) (Schedule, error) {
	s := strings.Join(strings.Fields(spec), " ")
	if s == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	word, rest, _ := strings.Cut(s, " ")
	switch strings.ToLower(word) {
	case "every", "@every":
		return parseEvery(s, rest)
	case "daily":
		return parseDaily(s, rest)
	}
	return parseCron(s)
}

// every runs at multiples of d counted from the zero time, so "every 6h" fires at 00:00, 06:00,
// 12:00 and 18:00 UTC whatever time the server started, and a restart does not shift the runs.
type every struct {
	spec string
	d    time.Duration
}

func parseEvery(spec, arg string) (Schedule, error) {
	if arg == "" || strings.Contains(arg, " ") {
		return nil, fmt.Errorf("schedule %q: want \"every <duration>\", e.g. \"every 15m\" or \"every 6h\"", spec)
	}
	d, err := time.ParseDuration(arg)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %q is not a duration (examples: 15m, 6h, 24h)", spec, arg)
	}
	if d < MinInterval {
		return nil, fmt.Errorf("schedule %q: the interval must be at least %s", spec, strings.TrimSuffix(MinInterval.String(), "0s"))
	}
	return every{spec: spec, d: d}, nil
}

func (e every) Next(after time.Time) time.Time { return after.Truncate(e.d).Add(e.d) }
func (e every) String() string                 { return e.spec }

// daily runs at fixed wall-clock times in a zone.
type daily struct {
	spec  string
	times []int // minutes after midnight, sorted, unique
	loc   *time.Location
}

func parseDaily(spec, arg string) (Schedule, error) {
	fields := strings.Fields(arg)
	if len(fields) == 0 || len(fields) > 2 {
		return nil, fmt.Errorf("schedule %q: want \"daily HH:MM[,HH:MM...] [zone]\", e.g. \"daily 07:00,18:00 Europe/Prague\"", spec)
	}
	loc := time.UTC
	if len(fields) == 2 {
		l, err := time.LoadLocation(fields[1])
		if err != nil {
			return nil, fmt.Errorf("schedule %q: unknown time zone %q (use an IANA name such as Europe/Prague)", spec, fields[1])
		}
		loc = l
	}
	seen := map[int]bool{}
	var times []int
	for _, hm := range strings.Split(fields[0], ",") {
		t, err := time.Parse("15:04", hm)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %q is not a time of day HH:MM (00:00 to 23:59)", spec, hm)
		}
		m := t.Hour()*60 + t.Minute()
		if !seen[m] {
			seen[m] = true
			times = append(times, m)
		}
	}
	sort.Ints(times)
	return daily{spec: spec, times: times, loc: loc}, nil
}

func (d daily) Next(after time.Time) time.Time {
	local := after.In(d.loc)
	y, mo, day := local.Date()
	// Two days always suffice; a third covers a day whose only time falls into a DST gap twice.
	for i := 0; i < 3; i++ {
		for _, m := range d.times {
			t := time.Date(y, mo, day+i, m/60, m%60, 0, 0, d.loc)
			if t.After(after) {
				return t
			}
		}
	}
	return time.Time{}
}

func (d daily) String() string { return d.spec }

// cronSchedule wraps robfig/cron's standard parser.
type cronSchedule struct {
	spec string
	s    cron.Schedule
}

func parseCron(spec string) (Schedule, error) {
	full := spec
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		// robfig/cron defaults to the host's local zone; the server's schedules are UTC unless told.
		full = "CRON_TZ=UTC " + spec
	} else if !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("schedule %q: a cron expression must follow the zone", spec)
	}
	s, err := cron.ParseStandard(full)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: not \"every <duration>\", \"daily HH:MM\" or a 5-field cron expression: %v", spec, err)
	}
	// A valid expression can still never match (30 February); robfig then returns the zero time.
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("schedule %q: never fires", spec)
	}
	return cronSchedule{spec: spec, s: s}, nil
}

func (c cronSchedule) Next(after time.Time) time.Time { return c.s.Next(after) }
func (c cronSchedule) String() string                 { return c.spec }
