// Package benchutil holds what the side-by-side benchmarks share: running a measured child
// process (each tool in its own process, so peak RSS belongs to one tool), medians of rounds,
// and size arguments such as "200MB".
package benchutil

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Measurement is what one child process took.
type Measurement struct {
	Seconds float64 // wall time
	CPU     float64 // user + system seconds: less disturbed than wall time by other load
	RSSMB   float64 // peak resident memory
}

// Child runs this benchmark's own binary with args (a sub-command) and measures it.
func Child(args ...string) (Measurement, error) {
	self, err := os.Executable()
	if err != nil {
		return Measurement{}, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return Measurement{}, fmt.Errorf("%v: %w", args, err)
	}
	m := Measurement{Seconds: time.Since(start).Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		m.RSSMB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	return m, nil
}

// Median of values (not modified).
func Median(values []float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ParseSize reads sizes such as 1GB, 200MB, 64KB or a plain byte count.
func ParseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, x := range []struct {
		suffix string
		m      int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if strings.HasSuffix(u, x.suffix) {
			mult, u = x.m, strings.TrimSuffix(u, x.suffix)
			break
		}
	}
	v, err := strconv.ParseFloat(u, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: use e.g. 200MB or 1GB", s)
	}
	return int64(v * float64(mult)), nil
}
