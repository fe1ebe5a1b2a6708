package notify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Defaults of Config, in one place.
const (
	// DefaultTimeout is Config.Timeout when unset.
	DefaultTimeout = 30 * time.Second
	// DefaultJitter is Config.Jitter when unset.
	DefaultJitter = 0.1
	// DefaultRemember is Config.Remember when unset.
	DefaultRemember = 1024
)

// Config configures a Notifier.
type Config struct {
	// Timeout is how long Wait blocks without a change before answering Changed false;
	// default DefaultTimeout. Agents' HTTP clients must wait longer than
	// Timeout × (1 + Jitter).
	Timeout time.Duration
	// Jitter spreads timeouts uniformly over Timeout × (1 ± Jitter), so agents that
	// started together do not come back together; in [0, 1). Zero means DefaultJitter,
	// a negative value none.
	Jitter float64
	// Remember is how many recent revisions the notifier remembers the publish order
	// of (see the package doc); default DefaultRemember.
	Remember int
}

// withDefaults returns c with its unset fields set, or an error naming the bad field.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Timeout < 0:
		return c, fmt.Errorf("notify config: Timeout %s is negative", c.Timeout)
	case c.Jitter >= 1:
		return c, fmt.Errorf("notify config: Jitter %g is not below 1", c.Jitter)
	case c.Remember < 0:
		return c, fmt.Errorf("notify config: Remember %d is negative", c.Remember)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.Remember == 0 {
		c.Remember = DefaultRemember
	}
	return c, nil
}

// Notifier tracks each cluster's desired revision and wakes the agents waiting on it.
// It is safe for concurrent use.
type Notifier struct {
	cfg Config

	mu sync.Mutex
	// seq numbers publishes; greater is later.
	seq uint64
	// all is the state PublishAll set; a cluster whose own state is older follows it.
	all state
	// clusters holds the state of each cluster published or waited on.
	clusters map[string]*state
	// known maps recent revisions to the sequence of their latest publish.
	known map[string]uint64
	// order holds the revisions of known, oldest first, to forget the oldest.
	order []string

	// waiting counts the Waits blocked now.
	waiting atomic.Int64
}

// state is a revision, the publish that set it, and the channel that publish's
// successor closes.
type state struct {
	rev     string
	seq     uint64
	changed chan struct{}
}

// New returns a Notifier that knows no revision yet.
func New(cfg Config) (*Notifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Notifier{
		cfg:      cfg,
		all:      state{changed: make(chan struct{})},
		clusters: map[string]*state{},
		known:    map[string]uint64{},
	}, nil
}

// Publish makes rev the desired revision of the named clusters and wakes their
// waiters. A cluster already at rev is left alone.
func (n *Notifier) Publish(rev string, clusters []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	n.remember(rev)
	for _, c := range clusters {
		e := n.entry(c)
		if cur, _ := n.current(e); cur == rev {
			continue
		}
		e.rev, e.seq = rev, n.seq
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

// PublishAll makes rev the desired revision of every cluster and wakes every waiter.
func (n *Notifier) PublishAll(rev string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	n.remember(rev)
	n.all.rev, n.all.seq = rev, n.seq
	close(n.all.changed)
	n.all.changed = make(chan struct{})
}

// Forget drops a cluster's state (the cluster was deleted), waking its waiters; the
// cluster follows PublishAll's revision again.
func (n *Notifier) Forget(cluster string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.clusters[cluster]; ok {
		close(e.changed)
		delete(n.clusters, cluster)
	}
}

// Current returns the cluster's desired revision; empty if none was published.
func (n *Notifier) Current(cluster string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	rev, _ := n.current(n.clusters[cluster])
	return rev
}

// Waiting returns the number of Waits blocked now.
func (n *Notifier) Waiting() int { return int(n.waiting.Load()) }

// Wait answers the long-poll of cluster's agent, which last synced since: at once
// with Changed true if since is not up to date, else when a publish changes the
// cluster's revision (Changed true) or after the jittered timeout (Changed false). If
// ctx ends first, it returns the current revision with the context's error.
func (n *Notifier) Wait(ctx context.Context, cluster, since string) (apiv1.DesiredRevision, error) {
	var timeout <-chan time.Time
	for {
		n.mu.Lock()
		e := n.entry(cluster)
		rev, seq := n.current(e)
		if !n.upToDate(since, rev, seq) {
			n.mu.Unlock()
			return apiv1.DesiredRevision{Revision: rev, Changed: true}, nil
		}
		mine, all := e.changed, n.all.changed
		n.mu.Unlock()

		if timeout == nil {
			t := time.NewTimer(n.timeout())
			defer t.Stop()
			timeout = t.C
		}
		n.waiting.Add(1)
		select {
		case <-mine:
		case <-all:
		case <-timeout:
			n.waiting.Add(-1)
			return apiv1.DesiredRevision{Revision: rev}, nil
		case <-ctx.Done():
			n.waiting.Add(-1)
			return apiv1.DesiredRevision{Revision: rev}, fmt.Errorf("wait for the desired revision of cluster %q: %w", cluster, context.Cause(ctx))
		}
		n.waiting.Add(-1)
		// Woken: look again. A publish that left this cluster at since (a repeat, or
		// Forget) keeps the wait going, within the same timeout.
	}
}

// entry returns the cluster's state, creating it. n.mu must be held.
func (n *Notifier) entry(cluster string) *state {
	e, ok := n.clusters[cluster]
	if !ok {
		e = &state{changed: make(chan struct{})}
		n.clusters[cluster] = e
	}
	return e
}

// current returns the revision of a cluster's state e (nil: none of its own) and the
// sequence of the publish that set it. n.mu must be held.
func (n *Notifier) current(e *state) (string, uint64) {
	if e != nil && e.seq > n.all.seq {
		return e.rev, e.seq
	}
	return n.all.rev, n.all.seq
}

// upToDate tells whether an agent at since needs nothing newer than rev, set by the
// publish seq. n.mu must be held.
func (n *Notifier) upToDate(since, rev string, seq uint64) bool {
	if since == rev {
		return true
	}
	s, ok := n.known[since]
	return ok && s >= seq
}

// remember records that rev was published by publish n.seq. n.mu must be held.
func (n *Notifier) remember(rev string) {
	if rev == "" {
		return
	}
	if _, ok := n.known[rev]; !ok {
		n.order = append(n.order, rev)
		if len(n.order) > n.cfg.Remember {
			delete(n.known, n.order[0])
			n.order = n.order[1:]
		}
	}
	n.known[rev] = n.seq
}

// timeout returns the configured timeout with its jitter applied.
func (n *Notifier) timeout() time.Duration {
	if n.cfg.Jitter == 0 {
		return n.cfg.Timeout
	}
	f := 1 + n.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(n.cfg.Timeout) * f)
}
