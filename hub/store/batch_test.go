package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// storedVersions returns app's stored version per cluster.
func storedVersions(t *testing.T, s *DB, app string) map[string]string {
	t.Helper()
	recs, err := s.Status(context.Background(), StatusQuery{App: app})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r.Cluster] = r.Status.Version
	}
	return out
}

// A batch stores each report in a savepoint: a report that fails (its cluster is not
// registered) gets its own error and leaves no trace, one whose caller went away is
// not stored, and the others are stored with their own results.
func TestReportBatchIsolatesEachReport(t *testing.T) {
	s := openTest(t, Config{})
	register(t, s, "a", "b", "c")
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	job := func(ctx context.Context, cluster, version string) *reportJob {
		return &reportJob{ctx: ctx, r: report(t, cluster, []apiv1.AppStatus{synced("web", 1, version)}), at: t0, done: make(chan struct{})}
	}
	jobs := []*reportJob{
		job(t.Context(), "a", "1.0"),
		job(t.Context(), "unregistered", "1.0"),
		job(t.Context(), "b", "1.1"),
		job(gone, "c", "1.2"),
	}
	s.storeBatch(jobs)
	if jobs[0].err != nil || len(jobs[0].res.Stored) != 1 || jobs[2].err != nil || len(jobs[2].res.Stored) != 1 {
		t.Errorf("registered clusters: %+v %v; %+v %v, want each stored", jobs[0].res, jobs[0].err, jobs[2].res, jobs[2].err)
	}
	if !errors.Is(jobs[1].err, ErrNotFound) {
		t.Errorf("unregistered cluster: %v, want ErrNotFound", jobs[1].err)
	}
	if !errors.Is(jobs[3].err, context.Canceled) {
		t.Errorf("report whose caller went away: %v, want context.Canceled", jobs[3].err)
	}
	if got := storedVersions(t, s, "web"); len(got) != 2 || got["a"] != "1.0" || got["b"] != "1.1" {
		t.Errorf("stored %v, want a=1.0 b=1.1 only", got)
	}
	// The same generation again is stale, in a batch as alone.
	again := []*reportJob{job(t.Context(), "a", "1.0"), job(t.Context(), "b", "9.9")}
	s.storeBatch(again)
	if again[0].err != nil || len(again[0].res.Stale) != 1 || again[1].err != nil || len(again[1].res.Stale) != 1 {
		t.Errorf("resent generations: %+v %v; %+v %v, want both stale", again[0].res, again[0].err, again[1].res, again[1].err)
	}
}

// Reports sent at once, as a fleet does after a fleet-wide change, are all stored and
// answered, each with its own result, and Close writes what is queued before closing:
// every acknowledged report is in the database after reopening it.
func TestConcurrentReportsAllStoredAcrossClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%03d", i)
	}
	register(t, s, names...)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		acked  = map[string]bool{}
		errs   []error
		closed = make(chan error, 1)
	)
	for i, c := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := report(t, c, []apiv1.AppStatus{synced("web", 1, "2.0")})
			res, err := s.ApplyReport(context.Background(), r, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && len(res.Stored) == 1:
				acked[c] = true
			case errors.Is(err, errClosed):
			default:
				errs = append(errs, fmt.Errorf("%s: %+v %w", c, res, err))
			}
			if i == n/2 {
				go func() { closed <- s.Close() }()
			}
		}()
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, err := range errs {
		t.Error(err)
	}
	s2, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	stored := storedVersions(t, s2, "web")
	for c := range acked {
		if stored[c] != "2.0" {
			t.Errorf("report of %s acknowledged but not stored", c)
		}
	}
	t.Logf("%d reports acknowledged, %d refused after Close, %d stored", len(acked), n-len(acked), len(stored))
}
