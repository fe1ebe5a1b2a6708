package leader

import (
	"context"
	"errors"
	"net/http"

	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "leader"}, func(c *testenv.Cluster) { env = c })
}

// candidate is one replica under test: it counts how often it leads and whether it is
// leading now.
type candidate struct {
	name    string
	cancel  context.CancelFunc
	done    chan struct{}
	leading atomic.Bool
	terms   atomic.Int32
	crashed atomic.Bool
	// fencedAtStart is set when a fresh term's fence did not hold.
	fencedAtStart atomic.Bool
	// stall, when set, holds every request until it is closed (or the request's
	// context ends): a paused process, whose requests leave when it resumes.
	stall atomic.Pointer[chan struct{}]
}

// pause holds the candidate's requests until resume.
func (c *candidate) pause() {
	ch := make(chan struct{})
	c.stall.Store(&ch)
}

// resume sends the held requests and the following ones.
func (c *candidate) resume() {
	if ch := c.stall.Swap(nil); ch != nil {
		close(*ch)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func start(t *testing.T, ns, name string, overlap *atomic.Int32, active *atomic.Int32) *candidate {
	t.Helper()
	return startWith(t, ns, name, overlap, active, Config{})
}

// startWith starts a candidate; timing fields set in tune replace the tests' defaults.
func startWith(t *testing.T, ns, name string, overlap *atomic.Int32, active *atomic.Int32, tune Config) *candidate {
	t.Helper()
	c := &candidate{name: name, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	c.cancel = cancel
	rc := env.RESTConfig()
	// A "crashed" candidate's requests fail: it can neither renew nor release.
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if c.crashed.Load() {
				return nil, errors.New("process is dead")
			}
			if ch := c.stall.Load(); ch != nil {
				select {
				case <-*ch:
				case <-r.Context().Done():
					return nil, r.Context().Err()
				}
			}
			return rt.RoundTrip(r)
		})
	})
	cfg := Config{
		Client: kubernetes.NewForConfigOrDie(rc), Namespace: ns, Name: "outpost-agent", Identity: name,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
	}
	if tune.LeaseDuration > 0 {
		cfg.LeaseDuration = tune.LeaseDuration
	}
	if tune.RenewDeadline > 0 {
		cfg.RenewDeadline = tune.RenewDeadline
	}
	if tune.RetryPeriod > 0 {
		cfg.RetryPeriod = tune.RetryPeriod
	}
	go func() {
		defer close(c.done)
		_ = Run(ctx, cfg, func(ctx context.Context, fence Fence) {
			if fence() != nil {
				c.fencedAtStart.Store(true)
			}
			if active.Add(1) > 1 {
				overlap.Add(1)
			}
			c.leading.Store(true)
			c.terms.Add(1)
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // finishing an apply
			c.leading.Store(false)
			active.Add(-1)
		})
	}()
	return c
}

func TestOneLeaderAndFailover(t *testing.T) {
	ns := env.CreateNamespace(t)
	var overlap, active atomic.Int32
	a := start(t, ns, "agent-a", &overlap, &active)
	b := start(t, ns, "agent-b", &overlap, &active)
	leader := waitLeader(t, a, b)
	standby := map[*candidate]*candidate{a: b, b: a}[leader]
	time.Sleep(time.Second) // several renew periods
	if standby.leading.Load() {
		t.Fatalf("both %s and %s lead", leader.name, standby.name)
	}

	// SIGTERM on the leader: it finishes, releases the Lease, and the standby takes over
	// well within the lease duration.
	stopped := time.Now()
	leader.cancel()
	<-leader.done
	if got := waitLeader(t, standby); got != standby {
		t.Fatalf("leader = %s, want %s", got.name, standby.name)
	}
	t.Logf("failover after release: %s", time.Since(stopped).Round(time.Millisecond))
	if n := overlap.Load(); n != 0 {
		t.Errorf("%d times two replicas led at once", n)
	}
	if leader.fencedAtStart.Load() || standby.fencedAtStart.Load() {
		t.Error("a new leader's fence did not hold at the start of its term")
	}
	standby.cancel()
	<-standby.done
}

func TestStandbyTakesOverFromCrashedLeader(t *testing.T) {
	ns := env.CreateNamespace(t)
	var overlap, active atomic.Int32
	a := start(t, ns, "agent-a", &overlap, &active)
	leader := waitLeader(t, a)
	b := start(t, ns, "agent-b", &overlap, &active)
	time.Sleep(500 * time.Millisecond)
	if b.leading.Load() {
		t.Fatal("standby leads while the leader renews")
	}
	crashed := time.Now()
	leader.crashed.Store(true)
	if got := waitLeader(t, b); got != b {
		t.Fatalf("leader = %s, want agent-b", got.name)
	}
	t.Logf("takeover from a crashed leader: %s (lease duration 2s)", time.Since(crashed).Round(time.Millisecond))
	// The crashed leader stopped acting once it could not renew (RenewDeadline).
	deadline := time.Now().Add(5 * time.Second)
	for leader.leading.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if leader.leading.Load() {
		t.Error("the leader that cannot renew still acts")
	}
	a.cancel()
	b.cancel()
	<-a.done
	<-b.done
}

// A leader paused beyond its Lease resumes, fails to renew and releases the Lease on
// its way out (ReleaseOnCancel). By then another replica holds it: the release must
// leave that replica's claim alone. client-go's release writes an empty holder over
// whatever it read, which ended the new leader's term and let the resumed replica
// take the Lease again while the new leader still wrote (found by TestChaos in e2e).
func TestResumedLeaderDoesNotReleaseTheNewLeadersLease(t *testing.T) {
	ns := env.CreateNamespace(t)
	var overlap, active atomic.Int32
	// a gives up renewing after 0.1 + 1.8 s of its pause and its release waits up to
	// 1.8 s more; b takes over 2 s after a's last renewal: within a's release.
	a := startWith(t, ns, "agent-a", &overlap, &active, Config{RenewDeadline: 1800 * time.Millisecond, RetryPeriod: 100 * time.Millisecond})
	if waitLeader(t, a) != a {
		t.Fatal("agent-a does not lead")
	}
	b := startWith(t, ns, "agent-b", &overlap, &active, Config{RetryPeriod: 50 * time.Millisecond})
	a.pause()
	if got := waitLeader(t, b); got != b {
		t.Fatalf("leader = %s, want agent-b", got.name)
	}
	leases := kubernetes.NewForConfigOrDie(env.RESTConfig()).CoordinationV1().Leases(ns)
	lease, err := leases.Get(t.Context(), "outpost-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	transitions := ptr.Deref(lease.Spec.LeaseTransitions, 0)
	a.resume() // its held renewal was cancelled; its release reads the Lease now

	// a stops leading; for the next two Lease durations b keeps the Lease and its term.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		l, err := leases.Get(t.Context(), "outpost-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "agent-b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != transitions {
			t.Fatalf("after agent-a resumed the Lease is held by %q with %d transitions, want agent-b with %d: the resumed replica released the new leader's Lease",
				h, ptr.Deref(l.Spec.LeaseTransitions, 0), transitions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (The candidates' lead functions overlap here, as a paused process's would: the
	// fence, not the callback, keeps the resumed replica from writing.)
	if a.leading.Load() || a.terms.Load() != 1 || !b.leading.Load() || b.terms.Load() != 1 {
		t.Errorf("agent-a leading %v after %d terms; agent-b leading %v in %d terms, want agent-b alone, each in one term",
			a.leading.Load(), a.terms.Load(), b.leading.Load(), b.terms.Load())
	}
	a.cancel()
	b.cancel()
	<-a.done
	<-b.done
}

// A release is refused unless the record read just before names this replica; the
// release of its own Lease goes through.
func TestReleaseOnlyOwnLease(t *testing.T) {
	inner := &fakeLock{id: "agent-a"}
	lock := &renewClock{Interface: inner, now: time.Now}
	release := resourcelock.LeaderElectionRecord{}
	var foreign *ForeignReleaseError
	if err := lock.Update(t.Context(), release); !errors.As(err, &foreign) {
		t.Fatalf("release without a read: %v, want a *ForeignReleaseError", err)
	}
	inner.holder = "agent-b"
	if _, _, err := lock.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := lock.Update(t.Context(), release); !errors.As(err, &foreign) || foreign.Holder != "agent-b" {
		t.Fatalf("release of agent-b's Lease: %v, want a *ForeignReleaseError naming agent-b", err)
	}
	if inner.updates != 0 {
		t.Fatalf("%d writes reached the Lease", inner.updates)
	}
	inner.holder = "agent-a"
	if _, _, err := lock.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := lock.Update(t.Context(), release); err != nil || inner.updates != 1 {
		t.Fatalf("release of its own Lease: %v, %d writes", err, inner.updates)
	}
	inner.getErr = errors.New("timeout")
	_, _, _ = lock.Get(t.Context())
	if err := lock.Update(t.Context(), release); !errors.As(err, &foreign) {
		t.Fatalf("release after a failed read: %v, want a *ForeignReleaseError", err)
	}
	// Renewals are not releases: they are conditional on the resourceVersion read.
	if err := lock.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a"}); err != nil {
		t.Fatal(err)
	}
}

func waitLeader(t *testing.T, cs ...*candidate) *candidate {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range cs {
			if c.leading.Load() {
				return c
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

// fakeLock is a resourcelock.Interface whose writes succeed unless fail is set and
// whose record names holder.
type fakeLock struct {
	resourcelock.Interface
	id      string
	fail    error
	holder  string
	getErr  error
	updates int
}

func (f *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return f.fail }
func (f *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	f.updates++
	return f.fail
}
func (f *fakeLock) Identity() string { return f.id }
func (f *fakeLock) Describe() string { return "ns/outpost-agent" }
func (f *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if f.getErr != nil {
		return nil, nil, f.getErr
	}
	return &resourcelock.LeaderElectionRecord{HolderIdentity: f.holder}, []byte(f.holder), nil
}

// The fence holds while this replica's last successful renewal is younger than the
// renew deadline, and not after: a replica paused beyond its Lease (SIGSTOP) finds it
// broken when it resumes, before any write, without a request.
func TestFenceFollowsTheLastRenewal(t *testing.T) {
	now := time.Unix(1000, 0)
	inner := &fakeLock{id: "agent-a"}
	lock := &renewClock{Interface: inner, now: func() time.Time { return now }}
	fence := lock.fence("ns/outpost-agent", 10*time.Second)
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a"}

	if err := fence(); err == nil {
		t.Fatal("the fence holds before the Lease was ever acquired")
	}
	if err := lock.Create(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Second)
	if err := fence(); err != nil {
		t.Fatalf("9s after acquiring: %v", err)
	}
	now = now.Add(2 * time.Second) // paused: no renewal for 11s
	var lost *LostError
	if err := fence(); !errors.As(err, &lost) || lost.Since != 11*time.Second {
		t.Fatalf("11s without renewal: %v, want a *LostError of 11s", err)
	}
	inner.fail = errors.New("conflict: another holder")
	_ = lock.Update(t.Context(), mine)
	if err := fence(); err == nil {
		t.Fatal("a failed renewal restored the fence")
	}
	inner.fail = nil
	_ = lock.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: ""}) // the release
	if err := fence(); err == nil {
		t.Fatal("releasing the Lease restored the fence")
	}
	if err := lock.Update(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	if err := fence(); err != nil {
		t.Fatalf("after a renewal: %v", err)
	}
}
