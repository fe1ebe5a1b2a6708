package gitserve_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/gitserve"
	"github.com/outpost-gitops/outpost/internal/gittest"
)

// BenchmarkFetchNewCommit measures an agent's depth-1 go-git fetch of one new
// commit (advertisement + one upload-pack round) over loopback HTTP.
func BenchmarkFetchNewCommit(b *testing.B) {
	repo := gittest.New(b)
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("apps/app%d/deployment.yaml", i)] = fmt.Sprintf("kind: Deployment\nmetadata: {name: app%d}\n", i)
	}
	repo.Commit(b, files, "seed", "")
	h, err := gitserve.New(gitserve.Config{Dir: repo.Dir(), Authorize: gitserve.AllowAll}, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	agent, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL + "/git", Depth: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		repo.Commit(b, map[string]string{"clusters/prod/apps.yaml": fmt.Sprintf("apps: [] # %d\n", i)}, "bump", "")
		b.StartTimer()
		if err := agent.FetchContext(ctx, &git.FetchOptions{Depth: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
