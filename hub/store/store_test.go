package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestConfigDefaults(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		"defaults": {cfg: Config{Path: "x.db"}, check: func(t *testing.T, c Config) {
			if c.MaxEventsPerCluster != DefaultMaxEventsPerCluster || c.BusyTimeout != DefaultBusyTimeout || c.Readers != DefaultReaders || c.Logger == nil {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		"kept": {cfg: Config{Path: "x.db", MaxEventsPerCluster: 7, BusyTimeout: time.Second, Readers: 2}, check: func(t *testing.T, c Config) {
			if c.MaxEventsPerCluster != 7 || c.BusyTimeout != time.Second || c.Readers != 2 {
				t.Errorf("set values changed: %+v", c)
			}
		}},
		"no path":         {cfg: Config{}, wantErr: "Path is empty"},
		"query in path":   {cfg: Config{Path: "x.db?mode=ro"}, wantErr: "plain file name"},
		"uri path":        {cfg: Config{Path: "file:x.db"}, wantErr: "plain file name"},
		"negative events": {cfg: Config{Path: "x.db", MaxEventsPerCluster: -1}, wantErr: "MaxEventsPerCluster"},
		"negative busy":   {cfg: Config{Path: "x.db", BusyTimeout: -time.Second}, wantErr: "BusyTimeout"},
		"negative pool":   {cfg: Config{Path: "x.db", Readers: -1}, wantErr: "Readers"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := tc.cfg.withDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error with %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestOpenIsWAL(t *testing.T) {
	s := openTest(t, Config{})
	var mode string
	if err := s.r.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("reader journal mode %q, want wal", mode)
	}
	var busy int
	if err := s.w.QueryRowContext(t.Context(), `PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if busy != int(DefaultBusyTimeout.Milliseconds()) {
		t.Fatalf("busy_timeout %d, want %d", busy, DefaultBusyTimeout.Milliseconds())
	}
	if _, err := s.r.ExecContext(t.Context(), `DELETE FROM clusters`); err == nil {
		t.Fatal("a reader connection could write")
	}
}

func TestMigrations(t *testing.T) {
	ms := migrations()
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %d (%s) has version %d", i, m.name, m.version)
		}
	}

	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hub.db")
	cfg, err := Config{Path: path}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}

	// From empty to version 1 only, as a hub of an earlier release left it.
	old, err := sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := migrate(ctx, old, sqliteDialect, ms[:1], cfg.Logger); err != nil || n != 1 {
		t.Fatalf("migrate an empty database to version 1: applied %d, %v", n, err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO clusters (name, labels, token_hash, created_at) VALUES ('prod-eu', '{}', zeroblob(32), 1)`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// This release upgrades it and keeps the data.
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := appliedVersions(t, s); !reflect.DeepEqual(got, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("applied versions %v, want [1 2 3 4 5]", got)
	}
	if _, err := s.GetCluster(ctx, "prod-eu"); err != nil {
		t.Fatalf("cluster lost by the upgrade: %v", err)
	}
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 1, "1.0.0")}))

	// Re-migrating an up-to-date database applies nothing.
	n, err := migrate(ctx, s.w, sqliteDialect, migrations(), cfg.Logger)
	if err != nil || n != 0 {
		t.Fatalf("re-migrate applied %d, err %v; want 0, nil", n, err)
	}
	// A database of a newer hub is refused, untouched.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, cfg)
	var verr *SchemaVersionError
	if !errors.As(err, &verr) || verr.Have != 99 || verr.Known != len(ms) {
		t.Fatalf("want a *SchemaVersionError for version 99, got %v", err)
	}
}

func appliedVersions(t *testing.T, s *SQLite) []int {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestRegistry(t *testing.T) { eachBackend(t, testRegistry) }

func testRegistry(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, Config{})
	token, hash := NewToken()
	if !strings.HasPrefix(token, TokenPrefix) || len(token) < len(TokenPrefix)+26 || HashToken(token) != hash {
		t.Fatalf("bad token %q / hash %s", token, hash)
	}
	c, err := s.RegisterCluster(ctx, NewCluster{Name: "prod-eu", Labels: map[string]string{"env": "prod", "region": "eu"}, TokenHash: hash, CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	register(t, s, "dev", "staging")

	// Duplicates are typed conflicts.
	_, err = s.RegisterCluster(ctx, NewCluster{Name: "prod-eu", TokenHash: HashToken("other")})
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Cluster != "prod-eu" {
		t.Fatalf("registering a name twice: want *ConflictError, got %v", err)
	}
	if _, err := s.RegisterCluster(ctx, NewCluster{Name: "other", TokenHash: hash}); !errors.As(err, &conflict) {
		t.Fatalf("reusing a token hash: want *ConflictError, got %v", err)
	}

	got, err := s.LookupToken(ctx, HashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("LookupToken = %+v, want %+v", got, c)
	}
	if _, err := s.LookupToken(ctx, HashToken(token+"x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: want ErrNotFound, got %v", err)
	}
	if _, err := s.GetCluster(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown cluster: want ErrNotFound, got %v", err)
	}
	list, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	if !reflect.DeepEqual(names, []string{"dev", "prod-eu", "staging"}) {
		t.Fatalf("ListClusters names %v", names)
	}
	if api := c.API(apiv1.ClusterSummary{Apps: 2}); api.Name != "prod-eu" || api.Labels["region"] != "eu" || api.Summary.Apps != 2 {
		t.Fatalf("API() = %+v", api)
	}

	// Deleting a cluster removes its status, drift and events, and its token.
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 1, "1.0.0")}, drift("web", "web", 5)))
	apply(t, s, report(t, "dev", []apiv1.AppStatus{synced("web", 1, "1.0.0")}, drift("web", "web", 5)))
	if err := s.DeleteCluster(ctx, "prod-eu"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCluster(ctx, "prod-eu"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: want ErrNotFound, got %v", err)
	}
	if _, err := s.LookupToken(ctx, hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token of a deleted cluster: want ErrNotFound, got %v", err)
	}
	for _, table := range []string{"app_status", "app_status_doc", "drift", "events"} {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE cluster = 'prod-eu'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the deleted cluster left in %s", n, table)
		}
	}
	if recs, err := s.Status(ctx, StatusQuery{Cluster: "dev"}); err != nil || len(recs) != 1 || len(recs[0].Drift) != 1 {
		t.Fatalf("another cluster's status was touched: %+v, %v", recs, err)
	}
	// A report of a cluster that is not registered is refused.
	if _, err := s.ApplyReport(ctx, report(t, "prod-eu", nil), t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("report of a deleted cluster: want ErrNotFound, got %v", err)
	}
}

func TestApplyReportOrdering(t *testing.T) { eachBackend(t, testApplyReportOrdering) }

func testApplyReportOrdering(t *testing.T, b backend) {
	gen := func(epoch, seq int64) apiv1.Generation { return apiv1.Generation{Epoch: epoch, Sequence: seq} }
	tests := map[string]struct {
		first, second apiv1.Generation
		secondWins    bool
	}{
		"newer sequence":             {first: gen(1, 5), second: gen(1, 6), secondWins: true},
		"older sequence":             {first: gen(1, 6), second: gen(1, 5)},
		"same generation (a retry)":  {first: gen(1, 6), second: gen(1, 6)},
		"new epoch, lower sequence":  {first: gen(1, 60), second: gen(2, 1), secondWins: true},
		"old epoch, higher sequence": {first: gen(2, 1), second: gen(1, 60)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := b.open(t, Config{})
			register(t, s, "prod-eu")
			a := synced("web", 1, "1.0.0")
			a.Generation = tc.first
			apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{a}, drift("web", "web", 5)))

			b := synced("web", 1, "2.0.0")
			b.Generation = tc.second
			res := apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{b}))

			got := statusOf(t, s, "prod-eu", "web")
			if tc.secondWins {
				if got.Status.Version != "2.0.0" || len(got.Drift) != 0 || !reflect.DeepEqual(res.Stored, []string{"web"}) {
					t.Fatalf("the newer report was not stored: %+v (result %+v)", got, res)
				}
				return
			}
			if got.Status.Version != "1.0.0" || got.Status.Generation != tc.first || len(got.Drift) != 1 || !reflect.DeepEqual(res.Stale, []string{"web"}) {
				t.Fatalf("an older report overwrote a newer one: %+v (result %+v)", got, res)
			}
		})
	}
}

func TestApplyReportIsPerApp(t *testing.T) { eachBackend(t, testApplyReportIsPerApp) }

func testApplyReportIsPerApp(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, Config{})
	register(t, s, "prod-eu")
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 5, "1.0.0"), synced("db", 1, "1.0.0")}))

	// One report: web's state is stale, db's is new; each is judged on its own.
	res := apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 4, "0.9.0"), synced("db", 2, "1.1.0")}))
	if !reflect.DeepEqual(res.Stored, []string{"db"}) || !reflect.DeepEqual(res.Stale, []string{"web"}) {
		t.Fatalf("result %+v", res)
	}
	if v := statusOf(t, s, "prod-eu", "web").Status.Version; v != "1.0.0" {
		t.Errorf("web version %s, want 1.0.0", v)
	}
	if v := statusOf(t, s, "prod-eu", "db").Status.Version; v != "1.1.0" {
		t.Errorf("db version %s, want 1.1.0", v)
	}
	// Every report, stale or not, updates the cluster's last report and agent.
	r := report(t, "prod-eu", nil)
	r.Agent = apiv1.AgentInfo{ID: "agent-2", Pod: "outpost-agent-xyz", Version: "0.2.0"}
	if _, err := s.ApplyReport(ctx, r, t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetCluster(ctx, "prod-eu")
	if err != nil {
		t.Fatal(err)
	}
	if !c.LastReportAt.Equal(t0.Add(5*time.Hour)) || c.Agent != r.Agent {
		t.Fatalf("cluster after a heartbeat: %+v", c)
	}
}

func TestDriftReplaceAndClear(t *testing.T) { eachBackend(t, testDriftReplaceAndClear) }

func testDriftReplaceAndClear(t *testing.T, b backend) {
	s := b.open(t, Config{})
	register(t, s, "prod-eu")
	objects := func(rec AppRecord) []string {
		var out []string
		for _, d := range rec.Drift {
			out = append(out, d.Object.Name+"="+string(d.Fields[0].Live))
		}
		return out
	}
	steps := []struct {
		name  string
		apps  []apiv1.AppStatus
		drift []apiv1.Drift
		web   []string // web's drift afterwards
		db    []string // db's drift afterwards
	}{
		{name: "drift on two objects of web, one of db",
			apps:  []apiv1.AppStatus{synced("web", 1, "1"), synced("db", 1, "1")},
			drift: []apiv1.Drift{drift("web", "web-b", 5), drift("web", "web-a", 4), drift("db", "db", 2)},
			web:   []string{"web-a=4", "web-b=5"}, db: []string{"db=2"}},
		{name: "web reports one object changed, one gone; db untouched",
			apps:  []apiv1.AppStatus{synced("web", 2, "1")},
			drift: []apiv1.Drift{drift("web", "web-a", 7)},
			web:   []string{"web-a=7"}, db: []string{"db=2"}},
		{name: "a stale web report brings nothing back",
			apps:  []apiv1.AppStatus{synced("web", 1, "1")},
			drift: []apiv1.Drift{drift("web", "web-b", 5)},
			web:   []string{"web-a=7"}, db: []string{"db=2"}},
		{name: "web reports no drift: cleared",
			apps: []apiv1.AppStatus{synced("web", 3, "1")},
			web:  nil, db: []string{"db=2"}},
		{name: "db removed: its drift goes with it",
			apps:  []apiv1.AppStatus{func() apiv1.AppStatus { a := synced("db", 2, "1"); a.Phase = apiv1.PhaseRemoved; return a }()},
			drift: []apiv1.Drift{drift("db", "db", 2)},
			web:   nil, db: nil},
	}
	for _, step := range steps {
		apply(t, s, report(t, "prod-eu", step.apps, step.drift...))
		if got := objects(statusOf(t, s, "prod-eu", "web")); !reflect.DeepEqual(got, step.web) {
			t.Fatalf("%s: web drift %v, want %v", step.name, got, step.web)
		}
		if got := objects(statusOf(t, s, "prod-eu", "db")); !reflect.DeepEqual(got, step.db) {
			t.Fatalf("%s: db drift %v, want %v", step.name, got, step.db)
		}
	}
	sums, err := s.AppSummaries(t.Context(), "prod-eu")
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].App != "db" || sums[0].Phase != apiv1.PhaseRemoved || sums[1].Drifted != 0 {
		t.Fatalf("summaries %+v", sums)
	}
}

func TestSummaries(t *testing.T) { eachBackend(t, testSummaries) }

func testSummaries(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, Config{})
	register(t, s, "a", "b", "idle")
	failedApp := synced("pay", 1, "2.0.0")
	failedApp.Phase = apiv1.PhaseFailed
	failedApp.Health = apiv1.Health{Status: apiv1.HealthTimeout}
	failedApp.Error = &apiv1.AppError{Stage: apiv1.StageHealth, Message: "timed out"}
	syncing := synced("db", 1, "1")
	syncing.Phase, syncing.Health.Status = apiv1.PhaseSyncing, apiv1.HealthInProgress
	removed := synced("old", 1, "1")
	removed.Phase = apiv1.PhaseRemoved
	apply(t, s, report(t, "a", []apiv1.AppStatus{synced("web", 1, "1.4.2"), failedApp, syncing, removed}, drift("web", "web", 5)))
	apply(t, s, report(t, "b", []apiv1.AppStatus{synced("web", 1, "1.4.1")}))

	got, err := s.ClusterSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]apiv1.ClusterSummary{
		"a": {Apps: 3, Synced: 1, Syncing: 1, Failed: 1, Healthy: 1, Unhealthy: 1, Drifted: 1},
		"b": {Apps: 1, Synced: 1, Healthy: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ClusterSummaries:\n got %+v\nwant %+v", got, want)
	}
	all, err := s.AppSummaries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, a := range all {
		keys = append(keys, a.Cluster+"/"+a.App+"@"+a.Version)
	}
	if want := []string{"a/db@1", "a/old@1", "a/pay@2.0.0", "a/web@1.4.2", "b/web@1.4.1"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("AppSummaries %v, want %v", keys, want)
	}
	if w := all[3]; w.Drifted != 1 || w.Revision != rev1 || !w.LastSyncedAt.Equal(t0.Add(time.Second)) || w.Health != apiv1.HealthCurrent {
		t.Fatalf("a/web summary %+v", w)
	}
}

func TestEventsAreBounded(t *testing.T) { eachBackend(t, testEventsAreBounded) }

func testEventsAreBounded(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, Config{MaxEventsPerCluster: 5})
	register(t, s, "a", "b")
	// Each report changes web's version: one sync event each.
	for i := 1; i <= 12; i++ {
		apply(t, s, report(t, "a", []apiv1.AppStatus{synced("web", int64(i), "1.0."+string(rune('0'+i%10)))}))
	}
	apply(t, s, report(t, "b", []apiv1.AppStatus{synced("web", 1, "1.0.0")}))

	events, err := s.Events(ctx, EventQuery{Cluster: "a", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("cluster a keeps %d events, want 5", len(events))
	}
	for i := 1; i < len(events); i++ {
		if events[i].ID >= events[i-1].ID {
			t.Fatalf("events not newest first: %d then %d", events[i-1].ID, events[i].ID)
		}
	}
	if e := events[0]; e.Type != apiv1.EventSync || e.Cluster != "a" || e.App != "web" || !strings.Contains(e.Message, "1.0.2") || !e.Time.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("newest event %+v", e)
	}
	if b, err := s.Events(ctx, EventQuery{Cluster: "b"}); err != nil || len(b) != 1 {
		t.Fatalf("cluster b's events %+v, %v: trimming a must not touch b", b, err)
	}
	page, err := s.Events(ctx, EventQuery{Cluster: "a", BeforeID: events[1].ID, Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != events[2].ID {
		t.Fatalf("paging: %+v, %v", page, err)
	}
	if none, err := s.Events(ctx, EventQuery{Type: apiv1.EventDrift}); err != nil || len(none) != 0 {
		t.Fatalf("type filter: %+v, %v", none, err)
	}
	if all, err := s.Events(ctx, EventQuery{App: "web"}); err != nil || len(all) != 6 {
		t.Fatalf("app filter across clusters: %d events, %v", len(all), err)
	}
}

func TestRestartKeepsState(t *testing.T) { eachBackend(t, testRestartKeepsState) }

func testRestartKeepsState(t *testing.T, b backend) {
	ctx := t.Context()
	cfg := b.config(t, Config{})
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	register(t, s, "prod-eu", "dev")
	failing := synced("pay", 2, "2.0.0")
	failing.Phase = apiv1.PhaseFailed
	failing.Error = &apiv1.AppError{Stage: apiv1.StageRender, Message: "bad yaml", File: "apps/pay/deploy.yaml", Line: 4}
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 1, "1.0.0"), synced("pay", 1, "1.0.0")}))
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 2, "1.1.0"), failing}, drift("web", "web", 9)))

	type snapshot struct {
		clusters []Cluster
		status   []AppRecord
		events   []apiv1.Event
		sums     map[string]apiv1.ClusterSummary
	}
	take := func(s *SQLite) snapshot {
		var snap snapshot
		var err error
		if snap.clusters, err = s.ListClusters(ctx); err != nil {
			t.Fatal(err)
		}
		if snap.status, err = s.Status(ctx, StatusQuery{}); err != nil {
			t.Fatal(err)
		}
		if snap.events, err = s.Events(ctx, EventQuery{}); err != nil {
			t.Fatal(err)
		}
		if snap.sums, err = s.ClusterSummaries(ctx); err != nil {
			t.Fatal(err)
		}
		return snap
	}
	before := take(s)
	if len(before.status) != 2 || len(before.events) < 4 || len(before.status[1].Drift) != 1 {
		t.Fatalf("unexpected state before restart: %+v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	after := take(s2)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed across a restart:\nbefore %+v\nafter  %+v", before, after)
	}
	// The stored generation survives too: an old report is still refused.
	res := apply(t, s2, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 1, "1.0.0")}))
	if len(res.Stale) != 1 {
		t.Fatalf("a stale report was accepted after a restart: %+v", res)
	}
}

func TestConcurrentReportsAndReads(t *testing.T) { eachBackend(t, testConcurrentReportsAndReads) }

func testConcurrentReportsAndReads(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, Config{MaxEventsPerCluster: 20})
	clusters := []string{"c0", "c1", "c2", "c3"}
	register(t, s, clusters...)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, c := range clusters {
		wg.Go(func() {
			for i := int64(1); i <= 50; i++ {
				a := synced("web", i, "1.0."+string(rune('0'+i%10)))
				r := &apiv1.StatusReport{Cluster: c, Agent: apiv1.AgentInfo{ID: "a"}, SentAt: t0.Add(time.Hour), Apps: []apiv1.AppStatus{a}}
				if _, err := s.ApplyReport(ctx, r, t0.Add(time.Duration(i)*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range 50 {
				if _, err := s.Status(ctx, StatusQuery{Cluster: c}); err != nil {
					errs <- err
					return
				}
				if _, err := s.ClusterSummaries(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range clusters {
		if rec := statusOf(t, s, c, "web"); rec.Status.Generation.Sequence != 50 {
			t.Errorf("%s: sequence %d, want 50", c, rec.Status.Generation.Sequence)
		}
		if ev, err := s.Events(ctx, EventQuery{Cluster: c, Limit: 1000}); err != nil || len(ev) != 20 {
			t.Errorf("%s: %d events, %v; want 20", c, len(ev), err)
		}
	}
}

// TestAttackFrozenStatusThawsOnNextReport: a status stored with an epoch far past the
// clock (accepted before the hub bounded epochs) no longer makes every real report
// stale: the next one replaces it (security review M3).
func TestAttackFrozenStatusThawsOnNextReport(t *testing.T) {
	eachBackend(t, testAttackFrozenStatusThawsOnNextReport)
}

func testAttackFrozenStatusThawsOnNextReport(t *testing.T, b backend) {
	s := b.open(t, Config{})
	register(t, s, "prod-eu")
	frozen := synced("web", 1, "6.6.6")
	frozen.Generation.Epoch = 9_000_000_000_000_000
	apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{frozen}))
	res := apply(t, s, report(t, "prod-eu", []apiv1.AppStatus{synced("web", 1, "1.0.0")}))
	if len(res.Stored) != 1 {
		t.Fatalf("real report after a frozen one: %+v, want stored", res)
	}
	if got := statusOf(t, s, "prod-eu", "web"); got.Status.Version != "1.0.0" {
		t.Errorf("version %s, want the real report's 1.0.0", got.Status.Version)
	}
}

// TestForgetApps: stale apps go (not reported for the stale age; or not desired and
// not reported for the shorter retention), the rest stay with their drift.
func TestForgetApps(t *testing.T) { eachBackend(t, testForgetApps) }

func testForgetApps(t *testing.T, b backend) {
	s := b.open(t, Config{})
	register(t, s, "prod-eu")
	ctx := context.Background()
	at := func(h int, apps ...string) {
		var st []apiv1.AppStatus
		for _, a := range apps {
			st = append(st, synced(a, int64(h+1), "1.0.0"))
		}
		if _, err := s.ApplyReport(ctx, report(t, "prod-eu", st), t0.Add(time.Duration(h)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	at(0, "old-desired", "old-gone")
	at(10, "new-gone", "web")
	gone, err := s.ForgetApps(ctx, "prod-eu", map[string]bool{"web": true, "old-desired": true, "new-gone": false},
		t0.Add(5*time.Hour), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	if !slices.Equal(gone, []string{"old-gone"}) {
		t.Errorf("forgot %v, want [old-gone]", gone)
	}
	gone, err = s.ForgetApps(ctx, "prod-eu", map[string]bool{"web": true}, t0.Add(5*time.Hour), t0.Add(time.Hour))
	if err != nil || !slices.Equal(gone, []string{"old-desired"}) {
		t.Errorf("stale: forgot %v, %v, want [old-desired]", gone, err)
	}
	recs, err := s.Status(ctx, StatusQuery{Cluster: "prod-eu"})
	if err != nil || len(recs) != 2 {
		t.Errorf("left %d records (%v), want new-gone and web", len(recs), err)
	}
}
