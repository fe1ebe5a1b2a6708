package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/pgtest"
)

// pg is the package's PostgreSQL server.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &pg)) }

// backend is a database the store's tests run against.
type backend struct {
	name string
	// config returns cfg pointing at a new empty database of the backend.
	config func(t testing.TB, cfg Config) Config
}

// backends are the databases every store test runs against.
var backends = []backend{
	{name: "sqlite", config: func(t testing.TB, cfg Config) Config {
		cfg.Path = filepath.Join(t.TempDir(), "hub.db")
		return cfg
	}},
	{name: "postgres", config: func(t testing.TB, cfg Config) Config {
		cfg.DSN = pg.NewDatabase(t)
		return cfg
	}},
}

// eachBackend runs test once per backend, as a subtest named after it.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

// open opens a store on a new empty database of the backend, closed at cleanup.
func (b backend) open(t testing.TB, cfg Config) *DB {
	t.Helper()
	s, err := Open(context.Background(), b.config(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// t0 is the base time of the fixtures.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const rev1 = "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098"

// openTest opens a store in a fresh temporary directory.
func openTest(t testing.TB, cfg Config) *SQLite {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "hub.db")
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// register registers clusters with tokens "token-<name>".
func register(t testing.TB, s Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := s.RegisterCluster(context.Background(), NewCluster{
			Name: n, Labels: map[string]string{"env": "prod"}, TokenHash: HashToken("token-" + n), CreatedAt: t0,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// synced is a Synced status of app at generation (1, seq).
func synced(app string, seq int64, version string) apiv1.AppStatus {
	return apiv1.AppStatus{
		App:        app,
		Generation: apiv1.Generation{Epoch: 1, Sequence: seq},
		Version:    version,
		Revision:   rev1,
		Phase:      apiv1.PhaseSynced,
		Health:     apiv1.Health{Status: apiv1.HealthCurrent},
		Counts:     apiv1.Counts{Desired: 3, Applied: 1, Configured: 1, Unchanged: 2},
		Changes: []apiv1.ObjectChange{{Action: apiv1.ActionConfigured,
			ObjectRef: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: app}}},
		Durations:    apiv1.Durations{ApplyMs: 50, TotalMs: 120},
		LastSyncedAt: t0.Add(time.Duration(seq) * time.Second),
	}
}

// drift is a drift of the Deployment name of app: spec.replicas changed by kubectl.
func drift(app, name string, live int) apiv1.Drift {
	return apiv1.Drift{
		App:    app,
		Object: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: name},
		Fields: []apiv1.DriftField{{
			Path: "spec.replicas", Desired: json.RawMessage("3"), Live: json.RawMessage(fmt.Sprint(live)),
			Manager: "kubectl", Operation: "Update", Subresource: "scale", Time: t0, TimeObserved: true,
		}},
		ObservedAt: t0,
	}
}

// report builds a valid report of cluster.
func report(t testing.TB, cluster string, apps []apiv1.AppStatus, ds ...apiv1.Drift) *apiv1.StatusReport {
	t.Helper()
	r := &apiv1.StatusReport{
		Cluster: cluster,
		Agent:   apiv1.AgentInfo{ID: "agent-1", Pod: "outpost-agent-abc"},
		SentAt:  t0.Add(time.Hour),
		Apps:    apps,
		Drift:   ds,
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("fixture report is invalid: %v", err)
	}
	return r
}

// apply stores a report, failing the test on error.
func apply(t testing.TB, s Store, r *apiv1.StatusReport) ReportResult {
	t.Helper()
	res, err := s.ApplyReport(context.Background(), r, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// statusOf returns the stored record of cluster/app, failing if there is none.
func statusOf(t testing.TB, s Store, cluster, app string) AppRecord {
	t.Helper()
	recs, err := s.Status(context.Background(), StatusQuery{Cluster: cluster, App: app})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("want one record of %s/%s, got %d", cluster, app, len(recs))
	}
	return recs[0]
}
