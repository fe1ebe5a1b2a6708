package store

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestRebind(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"none":          {"SELECT 1", "SELECT 1"},
		"numbered":      {"UPDATE t SET a = ?, b = ? WHERE c = ?", "UPDATE t SET a = $1, b = $2 WHERE c = $3"},
		"quoted kept":   {"SELECT '?', \"a?\" FROM t WHERE x = ?", "SELECT '?', \"a?\" FROM t WHERE x = $1"},
		"escaped quote": {"SELECT 'it''s ?' WHERE y = ?", "SELECT 'it''s ?' WHERE y = $1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := rebind(tc.in); got != tc.want {
				t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestConfigBackends(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"dsn only":       {cfg: Config{DSN: "postgres://h/db"}},
		"both":           {cfg: Config{Path: "x.db", DSN: "postgres://h/db"}, wantErr: "both set"},
		"negative conns": {cfg: Config{DSN: "postgres://h/db", MaxConns: -1}, wantErr: "MaxConns"},
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
			if err != nil || c.MaxConns != DefaultMaxConns {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
}

// TestPostgresBadDSN: a DSN that does not parse, or a server that does not answer, is
// an error without the password.
func TestPostgresBadDSN(t *testing.T) {
	for name, dsn := range map[string]string{
		"malformed":   "postgres://u:s3cret@h:notaport/db",
		"unreachable": "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{DSN: dsn})
			if err == nil {
				t.Fatal("opened")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// TestPostgresMigrations: an old schema is upgraded keeping its data, replicas starting
// together migrate once, and a database of a newer hub is refused.
func TestPostgresMigrations(t *testing.T) {
	ctx := t.Context()
	cfg := Config{DSN: pg.NewDatabase(t)}
	cc, err := parsePostgresDSN(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	old := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cc)})
	defer old.Close()
	if n, err := migrate(ctx, old, postgresDialect, migrations()[:1], slog.New(slog.DiscardHandler)); err != nil || n != 1 {
		t.Fatalf("migrate an empty database to version 1: applied %d, %v", n, err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO clusters (name, labels, token_hash, created_at) VALUES ('prod-eu', '{}', ?, 1)`, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}

	// Three replicas start at once on the old schema.
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		dbs []*DB
	)
	for range 3 {
		wg.Go(func() {
			s, err := Open(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			dbs = append(dbs, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s := dbs[0]
	for _, d := range dbs[1:] {
		d.Close()
	}
	want := make([]int, len(migrations()))
	for i := range want {
		want[i] = i + 1
	}
	if got := appliedVersions(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied versions %v, want %v", got, want)
	}
	if _, err := s.GetCluster(ctx, "prod-eu"); err != nil {
		t.Fatalf("cluster lost by the upgrade: %v", err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, cfg)
	var verr *SchemaVersionError
	if !errors.As(err, &verr) || verr.Have != 99 {
		t.Fatalf("want a *SchemaVersionError for version 99, got %v", err)
	}
}

// TestPostgresMigrationNeedsBothDialects: a migration written for SQLite only fails
// a PostgreSQL store by name instead of leaving it half migrated.
func TestPostgresMigrationNeedsBothDialects(t *testing.T) {
	m := migration{version: 9, name: "rollouts", sql: "CREATE TABLE x (i INTEGER)"}
	if _, err := m.statements(postgresDialect); err == nil || !strings.Contains(err.Error(), "migration 9 (rollouts) has no PostgreSQL statements") {
		t.Fatalf("got %v", err)
	}
	for _, m := range migrations() {
		if m.sql == "" || m.postgres == "" {
			t.Errorf("migration %d (%s) lacks a dialect", m.version, m.name)
		}
	}
}

// TestPostgresReplicasShareTheStore: two replicas (two DBs on one database) write
// one cluster's reports concurrently and register one name at once: the newest
// generation wins, events stay bounded, exactly one registration succeeds.
func TestPostgresReplicasShareTheStore(t *testing.T) {
	ctx := t.Context()
	cfg := Config{DSN: pg.NewDatabase(t), MaxEventsPerCluster: 10}
	a, b := openDSN(t, cfg), openDSN(t, cfg)
	register(t, a, "prod-eu")
	var wg sync.WaitGroup
	for i, s := range []*DB{a, b} {
		wg.Go(func() {
			for seq := int64(1 + i); seq <= 60; seq += 2 {
				r := &apiv1.StatusReport{Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "a"}, SentAt: t0,
					Apps: []apiv1.AppStatus{synced("web", seq, "1.0."+string(rune('0'+seq%10))), synced("api", seq, "2.0.0")}}
				if _, err := s.ApplyReport(ctx, r, t0.Add(time.Duration(seq)*time.Second)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []*DB{a, b} {
		if rec := statusOf(t, s, "prod-eu", "web"); rec.Status.Generation.Sequence != 60 {
			t.Errorf("sequence %d, want the newest, 60", rec.Status.Generation.Sequence)
		}
	}
	if ev, err := b.Events(ctx, EventQuery{Cluster: "prod-eu", Limit: 1000}); err != nil || len(ev) != 10 {
		t.Errorf("%d events, %v; want 10", len(ev), err)
	}

	var (
		ok, conflicts int
		mu            sync.Mutex
	)
	for i := range 8 {
		s := []*DB{a, b}[i%2]
		wg.Go(func() {
			_, err := s.RegisterCluster(ctx, NewCluster{Name: "race", TokenHash: HashToken("t" + string(rune('a'+i)))})
			var ce *ConflictError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || conflicts != 7 {
		t.Errorf("%d registrations succeeded and %d conflicted, want 1 and 7", ok, conflicts)
	}
}

// openDSN opens a store on cfg's database as it is (a second replica), closed at cleanup.
func openDSN(t testing.TB, cfg Config) *DB {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
