package gittest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

func clone(t *testing.T, srv *gittest.Server) *git.Repository {
	t.Helper()
	r, err := git.CloneContext(context.Background(), memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL: srv.URL(), Auth: &githttp.BasicAuth{Username: "x", Password: srv.Token()}})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	return r
}

func TestCommitAndFetch(t *testing.T) {
	srv := gittest.New(t, gittest.WithToken("tok"))
	if srv.Head() != "" {
		t.Fatalf("new server has head %s", srv.Head())
	}
	h1 := srv.Commit(t, map[string]string{"a/b.txt": "one", "c.txt": "two"}, "first", "Alice <alice@example.com>")
	if srv.Head() != h1 {
		t.Fatalf("head %s, want %s", srv.Head(), h1)
	}
	r := clone(t, srv)
	c, err := r.CommitObject(plumbing.NewHash(h1))
	if err != nil {
		t.Fatal(err)
	}
	if c.Author.Name != "Alice" || c.Author.Email != "alice@example.com" || c.Message != "first\n" {
		t.Errorf("commit = %s <%s> %q", c.Author.Name, c.Author.Email, c.Message)
	}
	h2 := srv.Commit(t, map[string]string{"a/b.txt": gittest.Deleted}, "second", "")
	if err := r.Fetch(&git.FetchOptions{Auth: &githttp.BasicAuth{Username: "x", Password: "tok"}}); err != nil {
		t.Fatal(err)
	}
	c2, err := r.CommitObject(plumbing.NewHash(h2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.File("a/b.txt"); err == nil {
		t.Error("deleted file still there")
	}
	if f, err := c2.File("c.txt"); err != nil || c2.ParentHashes[0].String() != h1 {
		t.Errorf("c.txt: %v, parents %v", err, c2.ParentHashes)
	} else if s, _ := f.Contents(); s != "two" {
		t.Errorf("c.txt = %q", s)
	}
	if st := srv.Stats(); st.Advertisements < 2 || st.UploadPacks < 2 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := git.CloneContext(context.Background(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL()}); err == nil {
		t.Error("clone without the token succeeded")
	}
}

func TestStopStart(t *testing.T) {
	srv := gittest.New(t)
	srv.Commit(t, map[string]string{"f": "1"}, "one", "")
	r := clone(t, srv)
	url := srv.URL()
	srv.Stop()
	srv.Stop() // twice is fine
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.FetchContext(ctx, &git.FetchOptions{}); err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatalf("fetch from a stopped server: %v", err)
	}
	srv.Start()
	if srv.URL() != url {
		t.Errorf("URL changed: %s -> %s", url, srv.URL())
	}
	head := srv.Commit(t, map[string]string{"f": "2"}, "two", "")
	if err := r.FetchContext(ctx, &git.FetchOptions{}); err != nil {
		t.Fatalf("fetch after Start: %v", err)
	}
	ref, _ := r.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
	if ref.Hash().String() != head {
		t.Errorf("fetched %s, want %s", ref.Hash(), head)
	}
}

// commitIn commits a file in a go-git clone.
func commitIn(t *testing.T, r *git.Repository, name, content string) {
	t.Helper()
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := wt.Filesystem.Create(name)
	f.Write([]byte(content))
	f.Close()
	if _, err := wt.Add(name); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "P", Email: "p@example.com", When: time.Now()}
	if _, err := wt.Commit("add "+name, &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
}

func TestPushRace(t *testing.T) {
	srv := gittest.New(t)
	base := srv.Commit(t, map[string]string{"f": "1"}, "one", "")
	a, b := clone(t, srv), clone(t, srv)
	commitIn(t, a, "a", "from a")
	commitIn(t, b, "b", "from b")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*git.Repository{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Push(&git.PushOptions{})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("push errors %v: want exactly one push to win", errs)
	}
	winner := a
	if errs[0] != nil {
		winner = b
	}
	head, _ := winner.Head()
	if srv.Head() != head.Hash().String() || srv.Head() == base {
		t.Errorf("server head %s, winner %s", srv.Head(), head.Hash())
	}
	if st := srv.Stats(); st.ReceivePacks < 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestGitCLIPush(t *testing.T) {
	if _, err := testenv.GitCLI(); err != nil {
		t.Skip("git CLI not installed")
	}
	srv := gittest.New(t, gittest.WithToken("tok"))
	srv.Commit(t, map[string]string{"f": "1"}, "one", "")
	dir := t.TempDir()
	run := func(dir string, args ...string) string {
		cmd := exec.Command(testenv.GitPath(), args...)
		cmd.Dir = dir
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_AUTHOR_NAME=P", "GIT_AUTHOR_EMAIL=p@example.com", "GIT_COMMITTER_NAME=P", "GIT_COMMITTER_EMAIL=p@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(dir, "clone", "-q", strings.Replace(srv.URL(), "http://", "http://x:tok@", 1), "w")
	w := filepath.Join(dir, "w")
	os.WriteFile(filepath.Join(w, "g"), []byte("person"), 0o644)
	run(w, "add", "g")
	run(w, "commit", "-q", "-m", "direct")
	run(w, "push", "-q", "origin", "main")
	if got := run(w, "rev-parse", "HEAD"); srv.Head() != got {
		t.Errorf("server head %s, pushed %s", srv.Head(), got)
	}
}

// TestReceivePackCompareAndSwap sends a ref update whose old value is stale
// straight to receive-pack: the server must refuse it, as a real Git server.
func TestReceivePackCompareAndSwap(t *testing.T) {
	srv := gittest.New(t)
	first := srv.Commit(t, map[string]string{"f": "1"}, "one", "")
	second := srv.Commit(t, map[string]string{"f": "2"}, "two", "")
	pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
	send := func(old, new string) string {
		body := pkt(old+" "+new+" refs/heads/main\x00report-status\n") + "0000"
		resp, err := http.Post(srv.URL()+"/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return string(out)
	}
	if out := send(first, first); !strings.Contains(out, "ng refs/heads/main fetch first") {
		t.Errorf("stale update answered %q", out)
	}
	if srv.Head() != second {
		t.Fatalf("head moved to %s", srv.Head())
	}
	if out := send(second, first); !strings.Contains(out, "ok refs/heads/main") {
		t.Errorf("current update answered %q", out)
	}
	if srv.Head() != first {
		t.Errorf("head %s, want %s", srv.Head(), first)
	}
}

// TestListenAddr serves on the address given, and URL names it.
func TestListenAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := gittest.New(t, gittest.WithListenAddr(addr), gittest.WithToken("tok"))
	if want := "http://" + addr + "/outpost.git"; srv.URL() != want {
		t.Fatalf("URL() = %s, want %s", srv.URL(), want)
	}
	head := srv.Commit(t, map[string]string{"a.txt": "a\n"}, "a", "")
	r := clone(t, srv)
	ref, err := r.Head()
	if err != nil || ref.Hash().String() != head {
		t.Fatalf("clone of %s: head %v, %v; want %s", srv.URL(), ref, err, head)
	}
}
