package main

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// serveProfiles serves Go's runtime profiles (CPU, heap, goroutines) on addr, a separate
// loopback-only listener, so an operator can see where a slow server spends its time without
// exposing the profiles on the portal's address. Off unless ANALYST_PPROF_ADDR is set.
func serveProfiles(a *app, addr string) {
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		a.logger.Error("ANALYST_PPROF_ADDR must be a loopback address; profiles not served", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		a.logger.Error("profiles listener", "error", err)
		return
	}
	a.logger.Info("serving runtime profiles", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	go func() {
		if err := http.Serve(ln, mux); err != nil {
			a.logger.Error("profiles listener", "error", err)
		}
	}()
}
