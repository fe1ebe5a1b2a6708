package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// newTest returns a Notifier with timeout (no jitter) and, if rev is set, PublishAll(rev).
func newTest(t testing.TB, timeout time.Duration, rev string) *Notifier {
	t.Helper()
	n, err := New(Config{Timeout: timeout, Jitter: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rev != "" {
		n.PublishAll(rev)
	}
	return n
}

// result is what a Wait returned.
type result struct {
	answer apiv1.DesiredRevision
	err    error
	at     time.Time
}

// waitAsync runs Wait in a goroutine and waits until it blocks (or returned).
func waitAsync(t *testing.T, ctx context.Context, n *Notifier, cluster, since string) <-chan result {
	t.Helper()
	before := n.Waiting()
	out := make(chan result, 1)
	go func() {
		a, err := n.Wait(ctx, cluster, since)
		out <- result{a, err, time.Now()}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Waiting() == before && len(out) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never blocked")
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

// receive returns the waiter's result, failing the test after limit.
func receive(t *testing.T, ch <-chan result, limit time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(limit):
		t.Fatalf("the waiter did not return within %s", limit)
		return result{}
	}
}

func TestConfig(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		want    Config
		wantErr string
	}{
		"defaults":         {cfg: Config{}, want: Config{Timeout: DefaultTimeout, Jitter: DefaultJitter, Remember: DefaultRemember}},
		"set":              {cfg: Config{Timeout: time.Second, Jitter: 0.5, Remember: 3}, want: Config{Timeout: time.Second, Jitter: 0.5, Remember: 3}},
		"jitter disabled":  {cfg: Config{Jitter: -1}, want: Config{Timeout: DefaultTimeout, Jitter: 0, Remember: DefaultRemember}},
		"negative timeout": {cfg: Config{Timeout: -time.Second}, wantErr: "Timeout"},
		"jitter too big":   {cfg: Config{Jitter: 1}, wantErr: "Jitter"},
		"negative memory":  {cfg: Config{Remember: -1}, wantErr: "Remember"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.cfg.withDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestAnswers checks which waits answer at once, and with what, after a series of
// publishes. A wait that would block is seen as the error of an ended context.
func TestAnswers(t *testing.T) {
	type publish struct {
		rev      string
		clusters []string // nil: PublishAll
	}
	type wait struct {
		cluster, since string
		changed        bool   // false: the wait blocks
		rev            string // the answer's revision
	}
	tests := map[string]struct {
		remember  int
		publishes []publish
		forget    string
		waits     []wait
	}{
		"nothing published": {
			waits: []wait{{"a", "", false, ""}, {"a", "r1", true, ""}},
		},
		"start: everyone at head": {
			publishes: []publish{{"r1", nil}},
			waits:     []wait{{"a", "r1", false, "r1"}, {"a", "r0", true, "r1"}, {"a", "", true, "r1"}},
		},
		"a commit for a only": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}},
			waits: []wait{
				{"a", "r1", true, "r2"}, {"a", "r2", false, "r2"},
				{"b", "r1", false, "r1"},
				{"b", "r2", false, "r1"}, // b fetched a newer head that did not touch it
			},
		},
		"commits for a then b": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}, {"r3", []string{"b"}}},
			waits: []wait{
				{"a", "r3", false, "r2"}, {"a", "r1", true, "r2"},
				{"b", "r2", true, "r3"}, {"b", "r3", false, "r3"},
			},
		},
		"a commit for every cluster after one for a": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}, {"r3", nil}},
			waits:     []wait{{"a", "r2", true, "r3"}, {"b", "r1", true, "r3"}, {"a", "r3", false, "r3"}},
		},
		"a commit for a after one for every cluster": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}, {"r3", nil}, {"r4", []string{"a", "c"}}},
			waits:     []wait{{"a", "r3", true, "r4"}, {"b", "r3", false, "r3"}, {"b", "r4", false, "r3"}, {"c", "r4", false, "r4"}},
		},
		"the same revision published twice": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}, {"r2", []string{"a", "b"}}},
			waits:     []wait{{"a", "r2", false, "r2"}, {"b", "r1", true, "r2"}},
		},
		"forgotten revisions": {
			remember:  2,
			publishes: []publish{{"r1", nil}, {"r2", []string{"x"}}, {"r3", []string{"x"}}, {"r4", []string{"x"}}},
			waits: []wait{
				{"a", "r1", false, "r1"}, // forgotten, but still a's current revision
				{"a", "r2", true, "r1"},  // forgotten: not known to be up to date
				{"a", "r3", false, "r1"},
			},
		},
		"a forgotten cluster follows every cluster's revision": {
			publishes: []publish{{"r1", nil}, {"r2", []string{"a"}}},
			forget:    "a",
			waits:     []wait{{"a", "r1", false, "r1"}, {"a", "r0", true, "r1"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := New(Config{Timeout: time.Hour, Remember: tc.remember})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.publishes {
				if p.clusters == nil {
					n.PublishAll(p.rev)
				} else {
					n.Publish(p.rev, p.clusters)
				}
			}
			if tc.forget != "" {
				n.Forget(tc.forget)
			}
			ended, cancel := context.WithCancel(t.Context())
			cancel()
			for _, w := range tc.waits {
				got, err := n.Wait(ended, w.cluster, w.since)
				blocked := errors.Is(err, context.Canceled)
				if err != nil && !blocked {
					t.Fatalf("Wait(%s, %q): %v", w.cluster, w.since, err)
				}
				if blocked == w.changed || got.Changed != w.changed || got.Revision != w.rev {
					t.Errorf("Wait(%s, since %q) = %+v (blocked %t), want changed=%t revision %q",
						w.cluster, w.since, got, blocked, w.changed, w.rev)
				}
				if cur := n.Current(w.cluster); cur != w.rev {
					t.Errorf("Current(%s) = %q, want %q", w.cluster, cur, w.rev)
				}
			}
			if n.Waiting() != 0 {
				t.Errorf("%d waits still counted", n.Waiting())
			}
		})
	}
}

func TestWaitReturnsOnPublish(t *testing.T) {
	const timeout = 20 * time.Second
	n := newTest(t, timeout, "r1")
	start := time.Now()
	ch := waitAsync(t, t.Context(), n, "prod-eu", "r1")
	published := time.Now()
	n.Publish("r2", []string{"prod-eu"})
	r := receive(t, ch, timeout)
	t.Logf("long-poll answered %s after the publish", r.at.Sub(published))
	if r.err != nil || r.answer != (apiv1.DesiredRevision{Revision: "r2", Changed: true}) {
		t.Fatalf("got %+v, %v; want r2, changed", r.answer, r.err)
	}
	if r.at.Sub(start) >= timeout {
		t.Fatalf("returned only at the timeout")
	}
}

func TestWaitIgnoresOtherClusters(t *testing.T) {
	n := newTest(t, 300*time.Millisecond, "r1")
	n.mu.Lock()
	mine := n.entry("a").changed
	n.mu.Unlock()
	ch := waitAsync(t, t.Context(), n, "a", "r1")

	n.Publish("r2", []string{"b", "c"})
	select {
	case <-mine:
		t.Fatal("a publish for other clusters closed a's channel")
	default:
	}
	r := receive(t, ch, 20*time.Second)
	if r.err != nil || r.answer != (apiv1.DesiredRevision{Revision: "r1", Changed: false}) {
		t.Fatalf("got %+v, %v; want a timeout at r1", r.answer, r.err)
	}
}

func TestWaitStaleSinceAnswersAtOnce(t *testing.T) {
	n := newTest(t, time.Hour, "r1")
	n.Publish("r2", []string{"a"})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	got, err := n.Wait(ctx, "a", "r1")
	t.Logf("stale since answered in %s", time.Since(start))
	if err != nil || got != (apiv1.DesiredRevision{Revision: "r2", Changed: true}) {
		t.Fatalf("got %+v, %v; want r2 changed at once", got, err)
	}
}

func TestWaitContextCancel(t *testing.T) {
	n := newTest(t, time.Hour, "r1")
	ctx, cancel := context.WithCancel(t.Context())
	ch := waitAsync(t, ctx, n, "a", "r1")
	cancel()
	r := receive(t, ch, 20*time.Second)
	if !errors.Is(r.err, context.Canceled) || !strings.Contains(r.err.Error(), `cluster "a"`) {
		t.Fatalf("want a wrapped context.Canceled naming the cluster, got %v", r.err)
	}
	if r.answer.Changed || r.answer.Revision != "r1" {
		t.Fatalf("answer %+v, want r1 unchanged", r.answer)
	}
	if n.Waiting() != 0 {
		t.Fatalf("%d waits still counted", n.Waiting())
	}
}

func TestWaitTimesOut(t *testing.T) {
	n := newTest(t, 50*time.Millisecond, "r1")
	got, err := n.Wait(t.Context(), "a", "r1")
	if err != nil || got != (apiv1.DesiredRevision{Revision: "r1"}) {
		t.Fatalf("got %+v, %v; want r1 unchanged", got, err)
	}
}

func TestRepeatedPublishKeepsWaiting(t *testing.T) {
	n := newTest(t, 300*time.Millisecond, "r1")
	n.Publish("r2", []string{"a"})
	n.mu.Lock()
	mine := n.entry("a").changed
	n.mu.Unlock()
	ch := waitAsync(t, t.Context(), n, "a", "r2")

	n.Publish("r2", []string{"a"}) // a repeat: a is at r2 already
	select {
	case <-mine:
		t.Fatal("a repeated publish woke the waiter")
	default:
	}
	n.PublishAll("r2") // wakes a, whose revision stays r2: it waits on
	r := receive(t, ch, 20*time.Second)
	if r.err != nil || r.answer != (apiv1.DesiredRevision{Revision: "r2"}) {
		t.Fatalf("got %+v, %v; want a timeout at r2", r.answer, r.err)
	}
}

func TestPublishAllWakesEveryWaiter(t *testing.T) {
	n := newTest(t, time.Hour, "r1")
	var chans []<-chan result
	for i := range 50 {
		chans = append(chans, waitAsync(t, t.Context(), n, fmt.Sprint("c", i), "r1"))
	}
	n.PublishAll("r2")
	for i, ch := range chans {
		r := receive(t, ch, 20*time.Second)
		if r.err != nil || r.answer != (apiv1.DesiredRevision{Revision: "r2", Changed: true}) {
			t.Fatalf("waiter %d: %+v, %v", i, r.answer, r.err)
		}
	}
}

func TestTimeoutJitter(t *testing.T) {
	tests := map[string]struct {
		jitter   float64
		min, max time.Duration
	}{
		"default ±10%": {jitter: 0, min: 27 * time.Second, max: 33 * time.Second},
		"±50%":         {jitter: 0.5, min: 15 * time.Second, max: 45 * time.Second},
		"none":         {jitter: -1, min: 30 * time.Second, max: 30 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := New(Config{Timeout: 30 * time.Second, Jitter: tc.jitter})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[time.Duration]bool{}
			for range 1000 {
				d := n.timeout()
				if d < tc.min || d > tc.max {
					t.Fatalf("timeout %s outside [%s, %s]", d, tc.min, tc.max)
				}
				seen[d] = true
			}
			if tc.min != tc.max && len(seen) < 100 {
				t.Fatalf("only %d distinct timeouts in 1000: not jittered", len(seen))
			}
		})
	}
}
