package gitstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/outpost-gitops/outpost/internal/gittest"
)

// BenchmarkSetVersionEmbedded measures one SetVersion commit on the embedded
// repository (edit, validate, write objects, move the ref).
func BenchmarkSetVersionEmbedded(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: filepath.Join(b.TempDir(), "repo.git"), Seed: filepath.Join("testdata", "seed")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.SetVersion(ctx, "prod-eu", "web", fmt.Sprintf("1.0.%d", i), jane, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetVersionRemote measures one SetVersion commit pushed over HTTP to
// a loopback Git server (gittest), without races.
func BenchmarkSetVersionRemote(b *testing.B) {
	ctx := context.Background()
	srv := gittest.New(b, gittest.WithToken(remoteToken))
	srv.Commit(b, seedFiles(b), "seed", "")
	s, err := Open(ctx, Config{Dir: filepath.Join(b.TempDir(), "clone.git"), URL: srv.URL(), Password: remoteToken}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.SetVersion(ctx, "prod-eu", "web", fmt.Sprintf("1.0.%d", i), jane, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistory measures History of one app after 200 commits.
func BenchmarkHistory(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: filepath.Join(b.TempDir(), "repo.git"), Seed: filepath.Join("testdata", "seed")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		cluster := []string{"prod-eu", "staging"}[i%2]
		if _, err := s.SetVersion(ctx, cluster, "web", fmt.Sprintf("1.0.%d", i), jane, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.History(ctx, "prod-eu", "web", 50); err != nil {
			b.Fatal(err)
		}
	}
}

// fleetSizes are the fleet sizes of the fleet benchmarks: their figures side by
// side show how a cost grows with the fleet.
var fleetSizes = []int{1000, 10000}

// BenchmarkSeedFleet measures creating the embedded repository from a seed of N
// clusters with their own files (Open: write the objects, validate every cluster).
func BenchmarkSeedFleet(b *testing.B) {
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			seed := writeFleetSeed(b, n)
			for b.Loop() {
				openFleet(b, seed)
			}
		})
	}
}

// BenchmarkAddClusterFleet measures registering one more cluster (AddCluster: one
// commit, then the head's snapshot and Changed, as the hub does after a
// registration) in a repository of N clusters.
func BenchmarkAddClusterFleet(b *testing.B) {
	ctx := context.Background()
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			s := openWarmFleet(b, n)
			for i := 0; b.Loop(); i++ {
				res, err := s.AddCluster(ctx, fmt.Sprintf("new-%06d", i), nil, jane, "")
				if err != nil {
					b.Fatal(err)
				}
				afterCommit(b, s, res)
			}
		})
	}
}

// openWarmFleet opens a repository of n clusters and builds its head's snapshot, as a
// running hub has.
func openWarmFleet(b *testing.B, n int) *Store {
	b.Helper()
	s := openFleet(b, writeFleetSeed(b, n))
	if _, err := s.Snapshot(context.Background(), ""); err != nil {
		b.Fatal(err)
	}
	return s
}

// afterCommit does what the hub does after a commit: Changed (which clusters'
// long-polls to answer) and the new head's snapshot. It returns the changed clusters.
func afterCommit(b *testing.B, s *Store, res *WriteResult) []string {
	b.Helper()
	ctx := context.Background()
	changed, err := s.Changed(ctx, res.Previous, res.Revision)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, ""); err != nil {
		b.Fatal(err)
	}
	return changed
}

// BenchmarkRegisterExistingFleet measures AddCluster of a cluster the repository
// already has (the hub registering a seeded cluster: no commit) among N clusters.
func BenchmarkRegisterExistingFleet(b *testing.B) {
	ctx := context.Background()
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			s := openFleet(b, writeFleetSeed(b, n))
			for i := 0; b.Loop(); i++ {
				if _, err := s.AddCluster(ctx, fleetName(i%n), nil, jane, ""); !errors.As(err, new(*ExistsError)) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBulkFleet measures one fleet-wide change's bulk write of the most clusters
// one may select (a shard of MaxBulkClusters, by label selector) in a repository of N
// clusters, then what the hub does after a commit: Changed (which clusters' long-polls
// to answer) and the head's snapshot.
func BenchmarkBulkFleet(b *testing.B) {
	ctx := context.Background()
	for _, n := range fleetSizes {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			s := openWarmFleet(b, n)
			shards := n / MaxBulkClusters
			for i := 0; b.Loop(); i++ {
				res, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: fmt.Sprintf("2.%d", i),
					Selector: fmt.Sprintf("shard=%d", i%shards)}, jane)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Changes) != MaxBulkClusters {
					b.Fatalf("%d clusters changed, want %d", len(res.Changes), MaxBulkClusters)
				}
				if changed := afterCommit(b, s, &res.WriteResult); len(changed) != MaxBulkClusters {
					b.Fatalf("Changed names %d clusters, want %d", len(changed), MaxBulkClusters)
				}
			}
		})
	}
}
