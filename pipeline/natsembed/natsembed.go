// Package natsembed runs a NATS server with JetStream inside the process, for tests,
// benchmarks and single-machine trials of the NATS backend.
package natsembed

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a JetStream-enabled NATS server on a random 127.0.0.1 port, storing in dir.
// With syncAlways every stored message is fsynced before it is acknowledged, the durability
// the bbolt log gives.
func Start(dir string, syncAlways bool) (*server.Server, error) {
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: syncAlways,
		NoSigs:     true,
		NoLog:      true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready")
	}
	return s, nil
}
