package agent

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

type slogLogger = slog.Logger

// newTestLogger sends the agent's logs to the test log (shown with -v or on failure).
// Warnings and errors only, so that verbose test output stays readable; writes after
// the test ended (a straggling informer goroutine) are dropped.
func newTestLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
