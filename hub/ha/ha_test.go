package ha

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost-gitops/outpost/internal/pgtest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &pg)) }

func testConfig(dsn string) Config {
	return Config{DSN: dsn, TryInterval: 100 * time.Millisecond, CheckInterval: 50 * time.Millisecond}
}

// replica is one replica's Run of a lease, recording when its work runs.
type replica struct {
	cancel  context.CancelFunc
	done    chan struct{}
	running atomic.Bool
}

// TestLeaseOneAtATimeAndTakeover: of three replicas one runs the work; when it stops,
// another takes over within a second; the work never runs twice at once.
func TestLeaseOneAtATimeAndTakeover(t *testing.T) {
	dsn := pg.NewDatabase(t)
	var (
		mu      sync.Mutex
		running int
		overlap atomic.Bool
		started = make(chan *replica, 10)
	)
	start := func() *replica {
		l, err := NewLeases(testConfig(dsn))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		r := &replica{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			_ = l.Run(ctx, "git-poll", func(ctx context.Context) {
				mu.Lock()
				running++
				overlap.Store(overlap.Load() || running > 1)
				mu.Unlock()
				r.running.Store(true)
				started <- r
				<-ctx.Done()
				r.running.Store(false)
				mu.Lock()
				running--
				mu.Unlock()
			})
		}()
		return r
	}
	rs := []*replica{start(), start(), start()}
	var holder *replica
	select {
	case holder = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no replica took the lease")
	}
	time.Sleep(300 * time.Millisecond) // the others keep trying
	for i := range 2 {
		stopped := time.Now()
		holder.cancel()
		<-holder.done
		select {
		case next := <-started:
			if took := time.Since(stopped); took > time.Second {
				t.Errorf("takeover %d took %s, want under 1 s", i, took)
			}
			holder = next
		case <-time.After(5 * time.Second):
			t.Fatalf("takeover %d: no replica took the lease", i)
		}
	}
	if overlap.Load() {
		t.Error("two replicas ran the work at once")
	}
	n := 0
	for _, r := range rs {
		if r.running.Load() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replicas run the work, want 1", n)
	}
	holder.cancel()
	<-holder.done
}

// TestLeaseLostWithItsConnection: when the server ends the holder's session (as it
// does for a holder whose network went), the holder's work is cancelled at its next
// check and another replica takes the lease.
func TestLeaseLostWithItsConnection(t *testing.T) {
	dsn := pg.NewDatabase(t)
	a, err := NewLeases(testConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	leaseCtx, release, held, err := a.Hold(t.Context(), "embedded-git")
	if err != nil || !held {
		t.Fatalf("hold a free lease: %v, %v", held, err)
	}
	defer release()
	b, _ := NewLeases(testConfig(dsn))
	if _, _, held, err := b.Hold(t.Context(), "embedded-git"); err != nil || held {
		t.Fatalf("a second replica holds a held lease: %v, %v", held, err)
	}
	if _, rel, held, err := b.Hold(t.Context(), "other"); err != nil || !held {
		t.Fatalf("another lease is not free: %v, %v", held, err)
	} else {
		rel()
	}

	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = ($1::bigint & x'FFFFFFFF'::bigint)`, Key("embedded-git")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaseCtx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the holder did not notice it lost its session")
	}
	_, rel, held, err := b.Hold(t.Context(), "embedded-git")
	if err != nil || !held {
		t.Fatalf("the lease was not freed with its session: %v, %v", held, err)
	}
	rel()
}

// TestBusFansOutHeads: a head published by one replica reaches every listener, in
// well under 100 ms.
func TestBusFansOutHeads(t *testing.T) {
	dsn := pg.NewDatabase(t)
	type heard struct {
		rev string
		at  time.Time
	}
	var listeners []chan heard
	for range 2 {
		b, err := NewBus(testConfig(dsn))
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan heard, 10)
		ready := make(chan struct{})
		go b.Listen(t.Context(), func(rev string) { ch <- heard{rev, time.Now()} }, ready)
		<-ready
		listeners = append(listeners, ch)
	}
	pub, err := NewBus(testConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, rev := range []string{"aaa", "bbb"} {
		sent := time.Now()
		if err := pub.Publish(t.Context(), rev); err != nil {
			t.Fatal(err)
		}
		for i, ch := range listeners {
			select {
			case h := <-ch:
				if h.rev != rev {
					t.Errorf("listener %d heard %q, want %q", i, h.rev, rev)
				}
				if d := h.at.Sub(sent); d > 100*time.Millisecond {
					t.Errorf("listener %d heard %s after %s", i, rev, d)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("listener %d did not hear %s", i, rev)
			}
		}
	}
}

// TestBusReconnects: a listener whose session ends reconnects and calls back with ""
// (heads may have been missed), then hears new heads.
func TestBusReconnects(t *testing.T) {
	dsn := pg.NewDatabase(t)
	b, err := NewBus(testConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 10)
	ready := make(chan struct{})
	go b.Listen(t.Context(), func(rev string) { ch <- rev }, ready)
	<-ready
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	select {
	case rev := <-ch:
		if rev != "" {
			t.Fatalf("first callback after a reconnect %q, want \"\"", rev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback after the session ended")
	}
	if err := b.Publish(t.Context(), "ccc"); err != nil {
		t.Fatal(err)
	}
	select {
	case rev := <-ch:
		if rev != "ccc" {
			t.Fatalf("heard %q, want ccc", rev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reconnected listener did not hear ccc")
	}
}
