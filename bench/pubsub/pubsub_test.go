package main

import (
	"fmt"
	"testing"
)

// Each benchmark publishes b.N messages of 1 KiB with 1 and with 16 concurrent publishers while
// one durable subscriber acks them all; msgs/s is the end-to-end rate. Use a fixed count, e.g.
// go test -bench . -benchtime 20000x ./bench/pubsub

func BenchmarkBolt(b *testing.B)      { benchmark(b, "bolt") }
func BenchmarkJetStream(b *testing.B) { benchmark(b, "jetstream") }
func BenchmarkGoChannel(b *testing.B) { benchmark(b, "gochannel") }

func benchmark(b *testing.B, name string) {
	for _, p := range []int{1, 16} {
		b.Run(fmt.Sprintf("publishers=%d", p), func(b *testing.B) {
			inst, err := backendNamed(name).open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer inst.close()
			b.SetBytes(1024)
			b.ResetTimer()
			r, err := measure(inst, b.N, p, 1024)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.Rate(), "msgs/s")
			b.ReportMetric(r.PublishRate(), "pub-msgs/s")
		})
	}
}

// TestRoundTrip checks on a small count that every backend delivers each message exactly as
// the benchmark counts it, so a broken backend cannot produce a flattering number.
func TestRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r, err := runOnce(b, t.TempDir(), 300, 4, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if r.Messages != 300 || r.Consumed <= 0 || r.Published <= 0 {
				t.Fatalf("implausible result %+v", r)
			}
		})
	}
}
