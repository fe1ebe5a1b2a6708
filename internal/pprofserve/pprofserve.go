// Package pprofserve serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/ on a listener of their own, for the hub's and the agent's
// --pprof-listen: what a process under load spends its CPU and memory on. The
// listener has no authentication, so callers bind it to loopback; it is off unless
// asked for.
package pprofserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Server is a running profile server.
type Server struct {
	srv    *http.Server
	served chan error
}

// Start listens on addr and serves the profiles until Stop. The error of a bad or
// busy address is net.Listen's, for the caller to name its flag.
func Start(addr string, log *slog.Logger) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &Server{
		// No WriteTimeout: a CPU profile or a trace streams for as long as asked (?seconds=).
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		served: make(chan error, 1),
	}
	go func() { s.served <- s.srv.Serve(l) }()
	log.Warn("serving pprof profiles without authentication", "addr", l.Addr().String())
	return s, nil
}

// Stop closes the server, waiting up to 5 s for profiles being written.
func (s *Server) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve pprof: %w", err)
	}
	return nil
}
