package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// benchClusters is the fleet size of the hub's target: 10 000 clusters reporting
// every 30 s, about 330 reports/s.
const benchClusters = 10_000

// benchStore opens a store with benchClusters registered clusters.
func benchStore(b *testing.B) *SQLite {
	b.Helper()
	s := openTest(b, Config{Path: filepath.Join(b.TempDir(), "hub.db")})
	registerFleet(b, s)
	return s
}

// registerFleet registers benchClusters clusters, c0 to c9999.
func registerFleet(b *testing.B, s *DB) {
	b.Helper()
	ctx := context.Background()
	// One transaction for the fleet: registration speed is not what is measured.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchClusters {
		h := HashToken(fmt.Sprint("token-", i))
		if _, err := tx.ExecContext(ctx, `INSERT INTO clusters (name, labels, token_hash, created_at) VALUES (?, '{}', ?, ?)`,
			fmt.Sprint("c", i), h[:], t0.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// benchReport is report n of the fleet: cluster n%benchClusters, apps apps, each at a
// new generation; every tenth report of a cluster changes the version (sync events)
// and carries drift on its first app.
func benchReport(n int64, apps int) *apiv1.StatusReport {
	cluster := fmt.Sprint("c", n%benchClusters)
	round := n/benchClusters + 1
	r := &apiv1.StatusReport{Cluster: cluster, Agent: apiv1.AgentInfo{ID: "agent"}, SentAt: t0.Add(time.Hour)}
	for a := range apps {
		st := synced(fmt.Sprint("app-", a), round, fmt.Sprint("1.0.", round/10))
		if round%10 != 0 {
			st.Counts = apiv1.Counts{Desired: 3, Unchanged: 3}
			st.Changes = nil
		}
		r.Apps = append(r.Apps, st)
	}
	if round%10 == 0 {
		r.Drift = []apiv1.Drift{drift("app-0", "app-0", int(round))}
	}
	return r
}

// BenchmarkApplyReport measures storing one agent report of 10 apps into a store of
// 10 000 clusters: serially, and from 8 concurrent handlers as the hub receives them.
// reports/s is the sustained rate; the target is 330/s.
func BenchmarkApplyReport(b *testing.B) {
	for _, apps := range []int{1, 10} {
		b.Run(fmt.Sprintf("apps=%d/serial", apps), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			var n int64
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ApplyReport(ctx, benchReport(n, apps), t0); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
		b.Run(fmt.Sprintf("apps=%d/parallel", apps), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4) // 4 × GOMAXPROCS handlers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.ApplyReport(ctx, benchReport(n.Add(1)-1, apps), t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkApplyReportBackends compares the databases: 10-app reports into a store of
// 10 000 clusters from 8 concurrent handlers per replica, on SQLite and on PostgreSQL
// with one replica and with two (two stores on one database, handlers split between
// them), as the hub receives them.
func BenchmarkApplyReportBackends(b *testing.B) {
	for _, tc := range []struct {
		name     string
		backend  backend
		replicas int
	}{{"sqlite", backends[0], 1}, {"postgres/replicas=1", backends[1], 1}, {"postgres/replicas=2", backends[1], 2}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := tc.backend.config(b, Config{})
			var stores []*DB
			for range tc.replicas {
				s, err := Open(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				stores = append(stores, s)
			}
			registerFleet(b, stores[0])
			ctx := context.Background()
			var n, handler atomic.Int64
			b.SetParallelism(4 * tc.replicas)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				s := stores[int(handler.Add(1))%len(stores)]
				for pb.Next() {
					if _, err := s.ApplyReport(ctx, benchReport(n.Add(1)-1, 10), t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkReadsUnderLoad measures the reads the dashboard makes (cluster summaries of
// the whole fleet, one cluster's full status) while reports are written.
func BenchmarkReadsUnderLoad(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for n := range int64(benchClusters) {
		if _, err := s.ApplyReport(ctx, benchReport(n, 10), t0); err != nil {
			b.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := int64(benchClusters); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.ApplyReport(ctx, benchReport(n, 10), t0); err != nil {
				b.Error(err)
				return
			}
			time.Sleep(3 * time.Millisecond) // ≈ 330 reports/s
		}
	}()
	defer func() { close(stop); <-done }()
	b.Run("cluster-status", func(b *testing.B) {
		var i int
		for b.Loop() {
			if _, err := s.Status(ctx, StatusQuery{Cluster: fmt.Sprint("c", i%benchClusters)}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("fleet-summaries", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ClusterSummaries(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fleet-app-summaries", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AppSummaries(ctx, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkApplyReportBurst measures a burst of one-app reports from 64 concurrent
// handlers (a fleet answering a fleet-wide change at once) into a store of 10 000
// clusters, with the reports grouped into shared transactions (the SQLite store's
// default) and each in its own, side by side.
func BenchmarkApplyReportBurst(b *testing.B) {
	for _, grouped := range []bool{true, false} {
		b.Run(fmt.Sprintf("grouped=%v", grouped), func(b *testing.B) {
			s := benchStore(b)
			if !grouped {
				s.batch = nil
			}
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.ApplyReport(ctx, benchReport(n.Add(1)-1, 1), t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}
