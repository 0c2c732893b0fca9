package main

import (
	"flag"
	"fmt"
	"github.com/ai-data-analyst/analyst/bench/benchutil"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
)

func main() {
	n := flag.Int("n", 20000, "messages per run")
	pubList := flag.String("publishers", "1,16", "comma-separated publisher counts")
	size := flag.Int("size", 1024, "payload bytes")
	dir := flag.String("dir", "", "where the logs are written (default: the system temp dir)")
	only := flag.String("backends", "bolt,jetstream,gochannel", "comma-separated backends to run")
	rounds := flag.Int("rounds", 1, "repeat every run this often; ratios use the median rate")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of all runs to this file")
	flag.Parse()

	var counts []int
	for _, s := range strings.Split(*pubList, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || p < 1 {
			fail(fmt.Errorf("-publishers: %q is not a positive number", s))
		}
		counts = append(counts, p)
	}
	var run []backend
	for _, name := range strings.Split(*only, ",") {
		found := false
		for _, b := range backends {
			if b.name == strings.TrimSpace(name) {
				run, found = append(run, b), true
			}
		}
		if !found {
			fail(fmt.Errorf("-backends: unknown backend %q (bolt, jetstream, gochannel)", name))
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	fmt.Printf("%d messages of %d bytes per run, durable subscriber acking each one\n\n", *n, *size)
	const row = "%-10s %10v %15v %18v %8v\n"
	fmt.Printf(row, "backend", "publishers", "publish msgs/s", "end-to-end msgs/s", "seconds")
	// Rounds interleave the backends so that a slow spell of the shared disk hits all of them.
	rates := map[string]map[int][]float64{}
	for range max(*rounds, 1) {
		for _, p := range counts {
			for _, b := range run {
				r, err := runOnce(b, *dir, *n, p, *size)
				if err != nil {
					fail(err)
				}
				if rates[b.name] == nil {
					rates[b.name] = map[int][]float64{}
				}
				rates[b.name][p] = append(rates[b.name][p], r.Rate())
				fmt.Printf(row, b.name, p, fmt.Sprintf("%.0f", r.PublishRate()), fmt.Sprintf("%.0f", r.Rate()),
					fmt.Sprintf("%.2f", r.Consumed.Seconds()))
			}
		}
	}
	fmt.Println()
	for _, p := range counts {
		bolt, ok := rates["bolt"][p]
		if !ok {
			continue
		}
		for _, other := range []string{"jetstream", "gochannel"} {
			if r, ok := rates[other][p]; ok {
				fmt.Printf("publishers=%-3d bolt/%s = %.2fx (median %.0f vs %.0f msgs/s)\n",
					p, other, benchutil.Median(bolt)/benchutil.Median(r), benchutil.Median(bolt), benchutil.Median(r))
			}
		}
	}
}

func fail(err error) {
	pprof.StopCPUProfile()
	fmt.Fprintln(os.Stderr, "pubsub:", err)
	os.Exit(1)
}
