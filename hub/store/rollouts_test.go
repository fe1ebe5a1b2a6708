package store

import (
	"context"
	"errors"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func testRun(id, app string, created time.Time) *apiv1.Rollout {
	return &apiv1.Rollout{ID: id, App: app, Version: "2.0", State: apiv1.RolloutRunning, Generation: 1, CreatedAt: created,
		Waves: []apiv1.RolloutWave{{Name: "eu", Clusters: []string{"a"}}}}
}

func TestRolloutsCreateUpdateListWithCompareAndSwap(t *testing.T) {
	eachBackend(t, testRolloutsCreateUpdateList)
}

func testRolloutsCreateUpdateList(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.open(t, Config{})
	r := testRun("web-1", "web", t0)
	if err := s.CreateRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	// One active run per app.
	var active *ActiveRolloutError
	if err := s.CreateRollout(ctx, testRun("web-2", "web", t0.Add(time.Second))); !errors.As(err, &active) || active.ID != "web-1" {
		t.Fatalf("second active run of web: %v, want an ActiveRolloutError naming web-1", err)
	}
	if err := s.CreateRollout(ctx, testRun("api-1", "api", t0.Add(2*time.Second))); err != nil {
		t.Fatalf("a run of another app: %v", err)
	}

	// Updates are compare-and-swap on the generation.
	next := *r
	next.Generation, next.Wave = 2, 1
	if err := s.UpdateRollout(ctx, &next); err != nil {
		t.Fatal(err)
	}
	stale := *r
	stale.Generation = 2
	if err := s.UpdateRollout(ctx, &stale); !errors.Is(err, ErrStaleRollout) {
		t.Fatalf("an update from a stale read: %v, want ErrStaleRollout", err)
	}
	got, err := s.GetRollout(ctx, "web-1")
	if err != nil || got.Generation != 2 || got.Wave != 1 {
		t.Fatalf("GetRollout = %+v, %v", got, err)
	}
	if _, err := s.GetRollout(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRollout of an unknown run: %v", err)
	}
	missing := testRun("nope", "web", t0)
	missing.Generation = 2
	if err := s.UpdateRollout(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateRollout of an unknown run: %v", err)
	}

	// A finished run frees its app.
	done := *got
	done.Generation, done.State = 3, apiv1.RolloutSucceeded
	if err := s.UpdateRollout(ctx, &done); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRollout(ctx, testRun("web-3", "web", t0.Add(3*time.Second))); err != nil {
		t.Fatalf("a new run after the first finished: %v", err)
	}

	for name, tc := range map[string]struct {
		q    RolloutQuery
		want []string
	}{
		"all, newest first": {RolloutQuery{}, []string{"web-3", "api-1", "web-1"}},
		"one app":           {RolloutQuery{App: "web"}, []string{"web-3", "web-1"}},
		"active":            {RolloutQuery{Active: true}, []string{"web-3", "api-1"}},
		"limit":             {RolloutQuery{Limit: 1}, []string{"web-3"}},
	} {
		list, err := s.ListRollouts(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if len(ids) != len(tc.want) {
			t.Errorf("%s: %v, want %v", name, ids, tc.want)
			continue
		}
		for i := range ids {
			if ids[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", name, ids, tc.want)
				break
			}
		}
	}
}

// Two hub processes on one database: only one holds the lease until it expires or
// is released.
func TestLeaseIsHeldByOneProcessAtATime(t *testing.T) {
	eachBackend(t, testLeaseHeldByOne)
}

func testLeaseHeldByOne(t *testing.T, be backend) {
	ctx := context.Background()
	cfg := be.config(t, Config{})
	open := func() *DB {
		s, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	const ttl = 10 * time.Second
	step := func(s *DB, holder string, at time.Time, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, "rollouts", holder, at, ttl)
		if err != nil || got != want {
			t.Fatalf("%s at %s: %v, %v; want %v", holder, at.Sub(t0), got, err, want)
		}
	}
	step(a, "hub-a", t0, true)
	step(b, "hub-b", t0.Add(time.Second), false)
	step(a, "hub-a", t0.Add(5*time.Second), true) // renewed until t0+15s
	step(b, "hub-b", t0.Add(14*time.Second), false)
	step(b, "hub-b", t0.Add(15*time.Second), true) // expired: taken over
	step(a, "hub-a", t0.Add(16*time.Second), false)
	if err := b.ReleaseLease(ctx, "rollouts", "hub-b"); err != nil {
		t.Fatal(err)
	}
	step(a, "hub-a", t0.Add(17*time.Second), true)
	if _, err := a.AcquireLease(ctx, "rollouts", "", t0, ttl); err == nil {
		t.Error("a lease without a holder was accepted")
	}
}

func TestAddEventsAreListedWithReportEvents(t *testing.T) {
	eachBackend(t, testAddEvents)
}

func testAddEvents(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.open(t, Config{})
	register(t, s, "alpha")
	err := s.AddEvents(ctx, []apiv1.Event{
		{Cluster: "alpha", App: "web", Type: apiv1.EventRollout, Time: t0, Version: "2.0", Message: "rollout web-1: wave eu started"},
		{Cluster: "", App: "web", Type: apiv1.EventRollout, Time: t0.Add(time.Second), Message: "rollout web-1 succeeded"},
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, EventQuery{App: "web", Type: apiv1.EventRollout})
	if err != nil || len(evs) != 2 || evs[0].Message != "rollout web-1 succeeded" || evs[1].Cluster != "alpha" {
		t.Fatalf("events = %+v, %v", evs, err)
	}
}
