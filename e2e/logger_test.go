package e2e

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// testLogger sends a component's warnings to the test log; writes after the test ended
// are dropped.
func testLogger(t *testing.T, component string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", component)
}

type testWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
