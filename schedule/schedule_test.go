package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNext(t *testing.T) {
	cases := []struct {
		spec, after string
		want        []string // successive runs
	}{
		{"every 6h", "2025-03-10T05:59:00Z", []string{"2025-03-10T06:00:00Z", "2025-03-10T12:00:00Z", "2025-03-10T18:00:00Z", "2025-03-11T00:00:00Z"}},
		{"every 15m", "2025-03-10T10:00:00Z", []string{"2025-03-10T10:15:00Z", "2025-03-10T10:30:00Z"}},
		{"@every 1h", "2025-03-10T10:20:00Z", []string{"2025-03-10T11:00:00Z"}},
		{"daily 07:00,13:00,18:00", "2025-03-10T13:00:00Z", []string{"2025-03-10T18:00:00Z", "2025-03-11T07:00:00Z", "2025-03-11T13:00:00Z"}},
		{"daily 18:00,07:00,07:00", "2025-03-10T20:00:00Z", []string{"2025-03-11T07:00:00Z", "2025-03-11T18:00:00Z"}},
		// Prague is UTC+1 in winter and UTC+2 from 30 March 2025: 07:00 local moves from 06:00Z to 05:00Z.
		{"daily 07:00 Europe/Prague", "2025-03-29T06:00:00Z", []string{"2025-03-30T05:00:00Z", "2025-03-31T05:00:00Z"}},
		// 02:30 does not exist in Prague on 30 March 2025; Go normalises it to 03:30 CEST.
		{"daily 02:30 Europe/Prague", "2025-03-29T02:00:00Z", []string{"2025-03-30T01:30:00Z", "2025-03-31T00:30:00Z"}},
		{"30 6 * * 1-5", "2025-03-07T07:00:00Z", []string{"2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"}}, // Friday -> Monday
		{"@hourly", "2025-03-10T10:20:00Z", []string{"2025-03-10T11:00:00Z"}},
		{"CRON_TZ=America/New_York 0 9 * * *", "2025-03-10T00:00:00Z", []string{"2025-03-10T13:00:00Z"}},
		{"  every   6h ", "2025-03-10T00:00:00Z", []string{"2025-03-10T06:00:00Z"}},
	}
	for _, c := range cases {
		s, err := Parse(c.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.spec, err)
			continue
		}
		at := mustTime(t, c.after)
		for _, w := range c.want {
			at = s.Next(at)
			if !at.Equal(mustTime(t, w)) {
				t.Errorf("%q: got %s, want %s", c.spec, at.UTC().Format(time.RFC3339), w)
				break
			}
		}
	}
}

func TestString(t *testing.T) {
	for spec, want := range map[string]string{
		"every 6h":                     "every 6h",
		" daily  07:00  UTC ":          "daily 07:00 UTC",
		"0 * * * *":                    "0 * * * *",
		"CRON_TZ=Europe/Prague @daily": "CRON_TZ=Europe/Prague @daily",
	} {
		s, err := Parse(spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		if s.String() != want {
			t.Errorf("String() = %q, want %q", s.String(), want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"":                            "empty schedule",
		"every 30s":                   "at least 1m",
		"every 6 hours":               `want "every <duration>"`,
		"every six":                   `"six" is not a duration`,
		"every":                       `want "every <duration>"`,
		"daily 25:00":                 `"25:00" is not a time of day`,
		"daily 7am":                   `"7am" is not a time of day`,
		"daily 07:00 Mars/Olympus":    `unknown time zone "Mars/Olympus"`,
		"daily":                       `want "daily HH:MM`,
		"0 6 * *":                     "5-field cron expression",
		"61 * * * *":                  "5-field cron expression",
		"0 0 30 2 *":                  "never fires",
		"CRON_TZ=Europe/Prague":       "must follow the zone",
		"CRON_TZ=Nowhere/X 0 * * * *": "bad location",
		"hourly":                      "5-field cron expression",
	}
	for spec, want := range cases {
		_, err := Parse(spec)
		if err == nil {
			t.Errorf("Parse(%q): no error", spec)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", spec, err, want)
		}
	}
}
