package agent

import (
	"errors"
	"sync/atomic"

	"github.com/outpost-gitops/outpost/agent/leader"
)

// errNotLeading refuses a write of a replica that does not lead.
var errNotLeading = errors.New("this replica does not hold the leader Lease: not writing")

// writeGate is the fence of every mutating request the agent sends to the apiserver
// (leader.Transport checks it), but the Lease's, which go through a client of their own.
// Without leader election it stays open. With it, it is closed from the start of
// leader election (the namespaces were created before) until this replica leads, holds
// the term's Fence while it leads, and is closed again when the term ends.
type writeGate struct {
	fence atomic.Pointer[leader.Fence]
}

// check returns nil when a write may be sent.
func (g *writeGate) check() error {
	f := g.fence.Load()
	if f == nil || *f == nil {
		return nil
	}
	return (*f)()
}

// set makes f the fence of the following writes; a nil f opens the gate.
func (g *writeGate) set(f leader.Fence) { g.fence.Store(&f) }

// close refuses every following write until set is called.
func (g *writeGate) close() { g.set(func() error { return errNotLeading }) }
