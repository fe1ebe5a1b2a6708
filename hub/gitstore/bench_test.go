package gitstore

import (
	"context"
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
