package leader

import (
	"context"
	"errors"
	"net/http"

	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

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
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func start(t *testing.T, ns, name string, overlap *atomic.Int32, active *atomic.Int32) *candidate {
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
			return rt.RoundTrip(r)
		})
	})
	cfg := Config{
		Client: kubernetes.NewForConfigOrDie(rc), Namespace: ns, Name: "outpost-agent", Identity: name,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
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

// fakeLock is a resourcelock.Interface whose writes succeed unless fail is set.
type fakeLock struct {
	resourcelock.Interface
	id   string
	fail error
}

func (f *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return f.fail }
func (f *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return f.fail }
func (f *fakeLock) Identity() string                                                { return f.id }

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
