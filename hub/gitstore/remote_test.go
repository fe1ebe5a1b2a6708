package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/gitserve"
	"github.com/outpost-gitops/outpost/internal/gittest"
)

const remoteToken = "hub-push-token-123"

// seedFiles reads testdata/seed as gittest.Commit input.
func seedFiles(t testing.TB) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("testdata", "seed")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// remoteStore starts a gittest server holding the seed and opens a store on it.
func remoteStore(t *testing.T, cfg Config) (*Store, *gittest.Server) {
	t.Helper()
	srv := gittest.New(t, gittest.WithToken(remoteToken))
	srv.Commit(t, seedFiles(t), "seed", "Seeder <seed@example.com>")
	cfg.URL, cfg.Password = srv.URL(), remoteToken
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "clone.git")
	}
	s, err := Open(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, srv
}

// serverFile reads a file at the server's head.
func serverFile(t *testing.T, srv *gittest.Server, path string) string {
	t.Helper()
	content, _ := fileAt(t, srv.Dir(), srv.Head(), path)
	return content
}

func TestRemoteSetVersion(t *testing.T) {
	ctx := context.Background()
	s, srv := remoteStore(t, Config{})
	if s.Head() != srv.Head() {
		t.Fatalf("store head %s, server %s", s.Head(), srv.Head())
	}
	res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, s.Head())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Head() != res.Revision || res.Attempts != 1 {
		t.Fatalf("server head %s, result %+v", srv.Head(), res)
	}
	content, c := fileAt(t, srv.Dir(), srv.Head(), "clusters/prod-eu/apps.yaml")
	if c.Author.Email != jane.Email || c.Message != "set web=1.4.2 on prod-eu\n" {
		t.Errorf("commit by %s: %q", c.Author.Email, c.Message)
	}
	golden(t, "store/set-web-prod-eu.golden", []byte(content))
	// Rollback reads the history fetched from the remote.
	if res, err := s.Rollback(ctx, "prod-eu", "web", bob, ""); err != nil || res.After != "1.4.1" || srv.Head() != res.Revision {
		t.Errorf("rollback: %+v, %v", res, err)
	}
}

func TestRemotePushRace(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		direct     map[string]string // committed directly to the remote after the store's last fetch
		useIfMatch bool
		stale      bool
		want       map[string]string // substrings of files at the server's head afterwards
	}{
		"another cluster, with If-Match": {
			direct:     map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"1.9.0\"\n"},
			useIfMatch: true,
			want:       map[string]string{"clusters/staging/apps.yaml": `"1.9.0"`, "clusters/prod-eu/apps.yaml": `version: "1.4.2"   # pinned`},
		},
		"same file, without If-Match": {
			direct: map[string]string{"clusters/prod-eu/apps.yaml": strings.Replace(seedFiles(t)["clusters/prod-eu/apps.yaml"], "2.0.0", "2.1.0", 1)},
			want:   map[string]string{"clusters/prod-eu/apps.yaml": "version: 2.1.0"},
		},
		"same file, with If-Match": {
			direct:     map[string]string{"clusters/prod-eu/apps.yaml": strings.Replace(seedFiles(t)["clusters/prod-eu/apps.yaml"], "2.0.0", "2.1.0", 1)},
			useIfMatch: true,
			stale:      true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, srv := remoteStore(t, Config{})
			read := s.Head()
			direct := srv.Commit(t, tc.direct, "direct change", "Person <person@example.com>")
			ifMatch := ""
			if tc.useIfMatch {
				ifMatch = read
			}
			res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, ifMatch)
			if tc.stale {
				if !errors.Is(err, ErrStaleRevision) {
					t.Fatalf("err = %v, want ErrStaleRevision", err)
				}
				if srv.Head() != direct {
					t.Errorf("server head moved to %s", srv.Head())
				}
				return
			}
			if err != nil {
				t.Fatalf("SetVersion: %v", err)
			}
			if res.Attempts != 2 || srv.Head() != res.Revision || res.Previous != read {
				t.Errorf("result %+v, server head %s", res, srv.Head())
			}
			_, c := fileAt(t, srv.Dir(), srv.Head(), "clusters/prod-eu/apps.yaml")
			if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != direct {
				t.Errorf("the hub's commit is not on top of the direct one: parents %v", c.ParentHashes)
			}
			for path, sub := range tc.want {
				if got := serverFile(t, srv, path); !strings.Contains(got, sub) {
					t.Errorf("%s lacks %q:\n%s", path, sub, got)
				}
			}
			if got := serverFile(t, srv, "clusters/prod-eu/apps.yaml"); !strings.Contains(got, `version: "1.4.2"`) {
				t.Errorf("the hub's change is missing:\n%s", got)
			}
		})
	}
}

// TestRemotePushRaceConcurrent races the store's writes against a person
// committing to the remote as fast as they can.
func TestRemotePushRaceConcurrent(t *testing.T) {
	ctx := context.Background()
	s, srv := remoteStore(t, Config{MaxAttempts: 50})
	const n = 8
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := srv.TryCommit(map[string]string{fmt.Sprintf("notes/%d.txt", i): "x"}, fmt.Sprint("note ", i), ""); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := range n {
		if _, err := s.SetVersion(ctx, "prod-eu", "web", fmt.Sprintf("2.0.%d", i), jane, ""); err != nil {
			t.Errorf("SetVersion %d: %v", i, err)
		}
	}
	wg.Wait()
	if got := serverFile(t, srv, "clusters/prod-eu/apps.yaml"); !strings.Contains(got, fmt.Sprintf(`"2.0.%d"`, n-1)) {
		t.Errorf("last version missing:\n%s", got)
	}
	for i := range n {
		if serverFile(t, srv, fmt.Sprintf("notes/%d.txt", i)) != "x" {
			t.Errorf("direct commit %d lost", i)
		}
	}
	h, err := s.History(ctx, "prod-eu", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) < n {
		t.Errorf("history has %d entries, want at least %d", len(h), n)
	}
}

func TestRemoteDown(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "clone.git")
	s, srv := remoteStore(t, Config{Dir: dir})
	head := srv.Head()
	srv.Stop()
	_, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, "")
	if err == nil {
		t.Fatal("SetVersion with the remote down succeeded")
	}
	if strings.Contains(err.Error(), remoteToken) {
		t.Errorf("error reveals the token: %v", err)
	}
	// Open with the remote down: from the local clone, or an error without a clone.
	if s2, err := Open(ctx, Config{Dir: dir, URL: srv.URL(), Password: remoteToken}, nil); err != nil || s2.Head() != head {
		t.Errorf("Open from the local clone: %v", err)
	}
	_, err = Open(ctx, Config{Dir: filepath.Join(t.TempDir(), "fresh.git"), URL: strings.Replace(srv.URL(), "http://", "http://u:"+remoteToken+"@", 1)}, nil)
	if err == nil || strings.Contains(err.Error(), remoteToken) {
		t.Errorf("Open without a clone while down: %v", err)
	}
	srv.Start()
	res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, "")
	if err != nil || srv.Head() != res.Revision {
		t.Fatalf("after the remote is back: %+v, %v", res, err)
	}
	if s.Head() == head {
		t.Error("store head did not move")
	}
}

func TestRemoteAuth(t *testing.T) {
	ctx := context.Background()
	srv := gittest.New(t, gittest.WithToken(remoteToken))
	srv.Commit(t, seedFiles(t), "seed", "")
	_, err := Open(ctx, Config{Dir: filepath.Join(t.TempDir(), "a.git"), URL: srv.URL(), Password: "wrong-token"}, nil)
	if err == nil || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("wrong token: %v", err)
	}
	for name, cfg := range map[string]Config{
		"userinfo": {URL: strings.Replace(srv.URL(), "http://", "http://oauth2:"+remoteToken+"@", 1)},
		"bearer":   {URL: srv.URL(), BearerToken: remoteToken},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Dir = filepath.Join(t.TempDir(), "clone.git")
			s, err := Open(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetVersion(ctx, "staging", "web", "1.6.0", jane, ""); err != nil {
				t.Fatal(err)
			}
			// The token is nowhere in the local clone.
			err = filepath.WalkDir(cfg.Dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(p)
				if strings.Contains(string(data), remoteToken) {
					t.Errorf("%s holds the token", p)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRefreshAndHeadChanged(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var moves []string
	s, srv := remoteStore(t, Config{HeadChanged: func(o, n string) {
		mu.Lock()
		defer mu.Unlock()
		moves = append(moves, o[:7]+">"+n[:7])
	}})
	start := s.Head()
	direct := srv.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps: []\n"}, "clear staging", "")
	old, cur, err := s.Refresh(ctx)
	if err != nil || old != start || cur != direct || s.Head() != direct {
		t.Fatalf("Refresh = %s, %s, %v", old, cur, err)
	}
	changed, err := s.Changed(ctx, old, cur)
	if err != nil || strings.Join(changed, ",") != "staging" {
		t.Errorf("Changed = %v, %v", changed, err)
	}
	if _, _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.SetVersion(ctx, "prod-eu", "api", "2.0.1", jane, "")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{start[:7] + ">" + direct[:7], direct[:7] + ">" + res.Revision[:7]}
	if strings.Join(moves, " ") != strings.Join(want, " ") {
		t.Errorf("HeadChanged calls %v, want %v", moves, want)
	}
}

// TestEmbeddedServedToAgents serves the embedded repository with gitserve and
// the store as ref source, as the hub does, and follows it with go-git.
func TestEmbeddedServedToAgents(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	h, err := gitserve.New(gitserve.Config{Dir: s.Dir(), Refs: s, Authorize: gitserve.AllowAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	agent, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: srv.URL + "/git", Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.FetchContext(ctx, &git.FetchOptions{Depth: 1}); err != nil {
		t.Fatal(err)
	}
	ref, _ := agent.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
	if ref.Hash().String() != res.Revision {
		t.Fatalf("agent fetched %s, want %s", ref.Hash(), res.Revision)
	}
	c, _ := agent.CommitObject(ref.Hash())
	f, err := c.File("clusters/prod-eu/apps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if content, _ := f.Contents(); !strings.Contains(content, `"1.4.2"`) {
		t.Errorf("agent sees:\n%s", content)
	}
}

// TestRefreshRepacks makes the local clone gather packs and checks that
// Refresh folds them into one and the store still reads everything.
func TestRefreshRepacks(t *testing.T) {
	ctx := context.Background()
	s, srv := remoteStore(t, Config{MaxPacks: 3})
	for i := range 6 {
		srv.Commit(t, map[string]string{"clusters/staging/apps.yaml": fmt.Sprintf("apps:\n  - name: web\n    version: \"1.%d\"\n", i)}, fmt.Sprint("direct ", i), "")
		if _, _, err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := filepath.Glob(filepath.Join(s.Dir(), "objects", "pack", "*.pack"))
	if err != nil || len(packs) > 3 {
		t.Errorf("%d packs after Refresh (%v), want at most 3", len(packs), err)
	}
	h, err := s.History(ctx, "staging", "web", 0)
	if err != nil || len(h) != 7 {
		t.Errorf("history after repacking: %d entries, %v", len(h), err)
	}
	if _, err := s.SetVersion(ctx, "staging", "web", "2.0", jane, ""); err != nil || !strings.Contains(serverFile(t, srv, "clusters/staging/apps.yaml"), `"2.0"`) {
		t.Errorf("write after repacking: %v", err)
	}
}

// TestRemoteStaleView checks that answers that depend on the content (unknown
// app, nothing to change) are given only after looking at the remote's newest
// head.
func TestRemoteStaleView(t *testing.T) {
	ctx := context.Background()
	s, srv := remoteStore(t, Config{})
	srv.Commit(t, map[string]string{"apps/cache/deployment.yaml": "kind: ConfigMap\n"}, "add cache", "")
	res, err := s.SetVersion(ctx, "prod-eu", "cache", "7.2", jane, "")
	if err != nil || res.Attempts != 1 || srv.Head() != res.Revision {
		t.Fatalf("app added on the remote: %+v, %v", res, err)
	}
	// Someone sets web to 1.4.2 on the remote; the hub is asked for 1.4.1,
	// which its stale view already shows: it must still commit.
	srv.Commit(t, map[string]string{"clusters/prod-eu/apps.yaml": strings.Replace(serverFile(t, srv, "clusters/prod-eu/apps.yaml"), `"1.4.1"`, `"1.4.2"`, 1)}, "bump web", "")
	res, err = s.SetVersion(ctx, "prod-eu", "web", "1.4.1", jane, "")
	if err != nil || !res.Committed || !strings.Contains(serverFile(t, srv, "clusters/prod-eu/apps.yaml"), `"1.4.1"`) {
		t.Fatalf("stale no-op: %+v, %v", res, err)
	}
}

// TestEmbeddedFetchWhileWriting has agents fetch in a loop while the hub
// commits: no fetch may fail or see a ref ahead of its objects.
func TestEmbeddedFetchWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	h, err := gitserve.New(gitserve.Config{Dir: s.Dir(), Refs: s, Authorize: gitserve.AllowAll}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for a := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL + "/git", Depth: 1})
			if err != nil {
				t.Errorf("agent %d clone: %v", a, err)
				return
			}
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := agent.FetchContext(ctx, &git.FetchOptions{Depth: 1}); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
					t.Errorf("agent %d fetch: %v", a, err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		if _, err := s.SetVersion(ctx, "prod-eu", "web", fmt.Sprintf("3.0.%d", i), jane, ""); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}
