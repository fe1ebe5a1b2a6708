package agent

import (
	"context"
	"log/slog"
	"testing"
)

// A sync cycle cut short by the end of the term repairs nothing: the stale writes it
// noted are the new leader's applies, which its own cycle did not get to record.
// (endSync would ask the drift watch, nil here, and queue the app for a re-apply.)
func TestAbortedCycleLeavesStaleWritesToTheNewLeader(t *testing.T) {
	l := &loop{log: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1)}
	l.beginSync()
	if l.staleWrite("web") {
		t.Fatal("a stale write during a cycle was to be repaired at once")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l.endSync(ctx)
	if p := l.take(); len(p.apps) > 0 {
		t.Errorf("apps queued for a re-apply after the term ended: %v", p.apps)
	}
	if l.syncing || l.staleSeen != nil {
		t.Errorf("cycle state kept: syncing %v, stale %v", l.syncing, l.staleSeen)
	}
}
