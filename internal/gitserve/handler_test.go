package gitserve_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/gitserve"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

const token = "s3cret-token"

var objectSignature = object.Signature{Name: "T", Email: "t@example.com", When: time.Now()}

// serve serves the repository of a gittest server (used here only to make
// commits) through a gitserve Handler that wants token.
func serve(t *testing.T, opts ...func(*gitserve.Config)) (*gittest.Server, string) {
	t.Helper()
	repo := gittest.New(t)
	cfg := gitserve.Config{Dir: repo.Dir(), Authorize: func(r *http.Request) bool {
		tok, ok := gitserve.Token(r)
		return ok && tok == token
	}}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := gitserve.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return repo, srv.URL + "/git/outpost.git"
}

func auth() *githttp.BasicAuth { return &githttp.BasicAuth{Username: "cluster", Password: token} }

func clone(t *testing.T, url string, depth int) *git.Repository {
	t.Helper()
	r, err := git.CloneContext(context.Background(), memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url, Auth: auth(), Depth: depth})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	return r
}

// fileIn reads path at the head of r's origin/main.
func fileIn(t *testing.T, r *git.Repository, path string) (string, plumbing.Hash) {
	t.Helper()
	ref, err := r.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File(path)
	if err != nil {
		return "", ref.Hash()
	}
	s, _ := f.Contents()
	return s, ref.Hash()
}

func TestGoGitCloneAndFetch(t *testing.T) {
	repo, url := serve(t)
	repo.Commit(t, map[string]string{"clusters/a/apps.yaml": "apps: []\n", "apps/web/d.yaml": "kind: Deployment\n"}, "one", "")
	r := clone(t, url, 0)
	if got, h := fileIn(t, r, "clusters/a/apps.yaml"); got != "apps: []\n" || h.String() != repo.Head() {
		t.Fatalf("after clone: %q at %s, want head %s", got, h, repo.Head())
	}
	repo.Commit(t, map[string]string{"clusters/a/apps.yaml": "apps:\n  - name: web\n    version: \"1\"\n"}, "two", "")
	repo.Commit(t, map[string]string{"apps/web/d.yaml": gittest.Deleted, "apps/web/e.yaml": "kind: Service\n"}, "three", "")
	if err := r.FetchContext(context.Background(), &git.FetchOptions{Auth: auth()}); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	got, h := fileIn(t, r, "clusters/a/apps.yaml")
	if h.String() != repo.Head() || !strings.Contains(got, "name: web") {
		t.Fatalf("after fetch: %q at %s, want head %s", got, h, repo.Head())
	}
	if e, _ := fileIn(t, r, "apps/web/e.yaml"); e != "kind: Service\n" {
		t.Errorf("apps/web/e.yaml = %q", e)
	}
	if d, _ := fileIn(t, r, "apps/web/d.yaml"); d != "" {
		t.Errorf("deleted file still there: %q", d)
	}
	if err := r.FetchContext(context.Background(), &git.FetchOptions{Auth: auth()}); !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Errorf("second fetch: %v, want already up to date", err)
	}
	// A fetch of an exact commit (the revision the hub announced).
	old := repo.Head()
	repo.Commit(t, map[string]string{"x": "y"}, "four", "")
	spec := config.RefSpec(old + ":refs/heads/pinned")
	if err := r.FetchContext(context.Background(), &git.FetchOptions{Auth: auth(), RefSpecs: []config.RefSpec{spec}}); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Errorf("fetch exact commit: %v", err)
	}
}

func TestGoGitShallow(t *testing.T) {
	repo, url := serve(t)
	var heads []string
	for i := range 3 {
		heads = append(heads, repo.Commit(t, map[string]string{"f": fmt.Sprint(i)}, fmt.Sprint("c", i), ""))
	}
	r := clone(t, url, 1)
	if _, err := r.CommitObject(plumbing.NewHash(heads[1])); err == nil {
		t.Error("depth 1 clone holds the parent commit")
	}
	shallow, err := r.Storer.Shallow()
	if err != nil || len(shallow) != 1 || shallow[0].String() != heads[2] {
		t.Errorf("shallow = %v, %v; want [%s]", shallow, err, heads[2])
	}
	next := repo.Commit(t, map[string]string{"f": "3"}, "c3", "")
	if err := r.FetchContext(context.Background(), &git.FetchOptions{Auth: auth(), Depth: 1}); err != nil {
		t.Fatalf("shallow fetch: %v", err)
	}
	if got, h := fileIn(t, r, "f"); got != "3" || h.String() != next {
		t.Errorf("after shallow fetch: %q at %s", got, h)
	}
}

func TestAuth(t *testing.T) {
	repo, url := serve(t)
	repo.Commit(t, map[string]string{"f": "x"}, "one", "")
	refs := url + "/info/refs?service=git-upload-pack"
	tests := map[string]struct {
		set  func(r *http.Request)
		want int
	}{
		"no credentials": {set: func(*http.Request) {}, want: http.StatusUnauthorized},
		"wrong password": {set: func(r *http.Request) { r.SetBasicAuth("cluster", "nope") }, want: http.StatusUnauthorized},
		"empty password": {set: func(r *http.Request) { r.SetBasicAuth(token, "") }, want: http.StatusUnauthorized},
		"wrong bearer":   {set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, want: http.StatusUnauthorized},
		"basic":          {set: func(r *http.Request) { r.SetBasicAuth("any", token) }, want: http.StatusOK},
		"bearer":         {set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, want: http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, refs, nil)
			tc.set(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
				if bytes.Contains(body, []byte(repo.Head())) {
					t.Error("a refused request saw the refs")
				}
			}
		})
	}
	_, err := git.CloneContext(context.Background(), memory.NewStorage(), nil, &git.CloneOptions{URL: url,
		Auth: &githttp.BasicAuth{Username: "cluster", Password: "wrong"}})
	if err == nil {
		t.Error("clone with a wrong token succeeded")
	}
}

func TestPushRefused(t *testing.T) {
	repo, url := serve(t)
	head := repo.Commit(t, map[string]string{"f": "x"}, "one", "")
	for name, req := range map[string]*http.Request{
		"advertise receive-pack": mustRequest(http.MethodGet, url+"/info/refs?service=git-receive-pack", nil),
		"receive-pack":           mustRequest(http.MethodPost, url+"/git-receive-pack", strings.NewReader("0000")),
	} {
		req.SetBasicAuth("cluster", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, resp.StatusCode)
		}
	}
	r := clone(t, url, 0)
	wt, _ := r.Worktree()
	f, _ := wt.Filesystem.Create("g")
	f.Write([]byte("y"))
	f.Close()
	wt.Add("g")
	if _, err := wt.Commit("push me", &git.CommitOptions{Author: &objectSignature}); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(&git.PushOptions{Auth: auth()}); err == nil {
		t.Error("go-git push succeeded")
	}
	if repo.Head() != head {
		t.Error("the push changed the repository")
	}
}

func mustRequest(method, url string, body io.Reader) *http.Request {
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return r
}

func TestBadRequests(t *testing.T) {
	repo, url := serve(t, func(c *gitserve.Config) { c.MaxRequestBytes = 4096 })
	repo.Commit(t, map[string]string{"f": "x"}, "one", "")
	want := func(h string) string { return fmt.Sprintf("%04x%s", 4+len(h), h) }
	tests := map[string]struct {
		method, path, body string
		header             map[string]string
		status             int
		contains           string
	}{
		"garbage":          {method: "POST", path: "/git-upload-pack", body: "hello", status: 400},
		"no want":          {method: "POST", path: "/git-upload-pack", body: "0000", status: 400},
		"bad hash":         {method: "POST", path: "/git-upload-pack", body: want("want xyz\n") + "0000", status: 400},
		"too large":        {method: "POST", path: "/git-upload-pack", body: strings.Repeat("0032want "+strings.Repeat("a", 40)+"\n", 200), status: 413},
		"wrong type":       {method: "POST", path: "/git-upload-pack", body: "0000", header: map[string]string{"Content-Type": "text/plain"}, status: 415},
		"not our ref":      {method: "POST", path: "/git-upload-pack", body: want("want "+strings.Repeat("ab", 20)+"\n") + "0000" + want("done\n"), status: 200, contains: "ERR upload-pack: not our ref"},
		"dumb protocol":    {method: "GET", path: "/info/refs", status: 403},
		"unknown path":     {method: "GET", path: "/objects/info/packs", status: 404},
		"get upload-pack":  {method: "GET", path: "/git-upload-pack", status: 405},
		"post info/refs":   {method: "POST", path: "/info/refs?service=git-upload-pack", status: 405},
		"deepen-since":     {method: "POST", path: "/git-upload-pack", body: want("want "+repo.Head()+" shallow\n") + want("deepen-since 1\n") + "0000", status: 400},
		"gzip not gzipped": {method: "POST", path: "/git-upload-pack", body: "0000", header: map[string]string{"Content-Encoding": "gzip"}, status: 400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := mustRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			req.SetBasicAuth("cluster", token)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if !bytes.Contains(body, []byte(tc.contains)) {
				t.Errorf("body %q does not contain %q", body, tc.contains)
			}
		})
	}
}

// git runs the git CLI in dir with a clean environment.
func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.GitPath(), args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitCLIFails(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.GitPath(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("git %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

func TestGitCLI(t *testing.T) {
	if _, err := testenv.GitCLI(); err != nil {
		t.Skip("git CLI not installed")
	}
	repo, url := serve(t)
	for i := range 3 {
		repo.Commit(t, map[string]string{"f": fmt.Sprint(i), fmt.Sprintf("dir/%d", i): "x"}, fmt.Sprint("c", i), "")
	}
	authURL := strings.Replace(url, "http://", "http://cluster:"+token+"@", 1)
	for _, proto := range []string{"0", "2"} {
		t.Run("protocol v"+proto, func(t *testing.T) {
			work := t.TempDir()
			gitCLI(t, work, "-c", "protocol.version="+proto, "clone", "-q", authURL, "full")
			full := filepath.Join(work, "full")
			if got := gitCLI(t, full, "rev-parse", "HEAD"); got != repo.Head() {
				t.Fatalf("clone head %s, want %s", got, repo.Head())
			}
			// Local commits the server does not know make the negotiation take
			// several stateless rounds before it finds the common commit.
			gitCLI(t, full, "checkout", "-q", "-b", "local")
			for i := range 40 {
				os.WriteFile(filepath.Join(full, "local"), []byte(fmt.Sprint(i)), 0o644)
				gitCLI(t, full, "add", "local")
				gitCLI(t, full, "commit", "-q", "-m", fmt.Sprint("local ", i))
			}
			repo.Commit(t, map[string]string{"f": "new " + proto}, "server "+proto, "")
			gitCLI(t, full, "-c", "protocol.version="+proto, "fetch", "-q", "origin")
			if got := gitCLI(t, full, "rev-parse", "origin/main"); got != repo.Head() {
				t.Errorf("fetched origin/main %s, want %s", got, repo.Head())
			}
			if got := gitCLI(t, full, "show", "origin/main:f"); got != "new "+proto {
				t.Errorf("f = %q", got)
			}
			gitCLI(t, full, "fsck", "--no-progress")

			gitCLI(t, work, "-c", "protocol.version="+proto, "clone", "-q", "--depth", "1", authURL, "shallow")
			shallow := filepath.Join(work, "shallow")
			if got := gitCLI(t, shallow, "rev-list", "--count", "HEAD"); got != "1" {
				t.Errorf("depth 1 clone has %s commits", got)
			}
			repo.Commit(t, map[string]string{"f": "newer " + proto}, "server again "+proto, "")
			gitCLI(t, shallow, "-c", "protocol.version="+proto, "fetch", "-q", "--depth", "1", "origin")
			if got := gitCLI(t, shallow, "rev-parse", "origin/main"); got != repo.Head() {
				t.Errorf("shallow fetch head %s, want %s", got, repo.Head())
			}
			gitCLI(t, shallow, "-c", "protocol.version="+proto, "fetch", "-q", "--unshallow", "origin")
			if got, want := gitCLI(t, shallow, "rev-list", "--count", "origin/main"), gitCLI(t, repo.Dir(), "rev-list", "--count", "main"); got != want {
				t.Errorf("after --unshallow: %s commits, want %s", got, want)
			}
			gitCLI(t, shallow, "fsck", "--no-progress")

			out := gitCLIFails(t, full, "push", "-q", "origin", "local:main")
			if !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "read-only") {
				t.Errorf("push output: %s", out)
			}
			out = gitCLIFails(t, work, "clone", "-q", strings.Replace(url, "http://", "http://cluster:wrong@", 1), "denied")
			if strings.Contains(out, token) {
				t.Error("the token appears in git's output")
			}
		})
	}
}

// TestGitCLIShallowFetchFleet is an agent's fetch with the git CLI: a depth-1
// clone of a fleet repository, then "fetch --depth 1" of a commit that changed
// one cluster, added one, removed one and moved an app file, which the server
// answers by pairing the new trees with the client's.
func TestGitCLIShallowFetchFleet(t *testing.T) {
	if _, err := testenv.GitCLI(); err != nil {
		t.Skip("git CLI not installed")
	}
	repo, url := serve(t)
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("clusters/c%03d/apps.yaml", i)] = fmt.Sprintf("apps: [web] # %d\n", i)
	}
	for i := range 10 {
		files[fmt.Sprintf("apps/app%d/deployment.yaml", i)] = fmt.Sprintf("kind: Deployment # %d\n", i)
	}
	repo.Commit(t, files, "seed", "")
	authURL := strings.Replace(url, "http://", "http://cluster:"+token+"@", 1)
	for p, proto := range []string{"0", "2"} {
		t.Run("protocol v"+proto, func(t *testing.T) {
			work := t.TempDir()
			gitCLI(t, work, "-c", "protocol.version="+proto, "clone", "-q", "--depth", "1", "--no-checkout", authURL, "agent")
			agent := filepath.Join(work, "agent")
			for round := range 3 {
				tag := fmt.Sprint(proto, "-", round)
				repo.Commit(t, map[string]string{
					"clusters/c117/apps.yaml":                             "apps: [web, api] # " + tag + "\n",
					"clusters/new" + tag + "/apps.yaml":                   "apps: []\n",
					fmt.Sprintf("clusters/c%03d/apps.yaml", 10+3*p+round): gittest.Deleted,
					"apps/app1/deployment.yaml":                           gittest.Deleted,
					"apps/app1-" + tag + "/deployment.yaml":               "kind: Deployment # 1\n",
				}, "change "+tag, "")
				gitCLI(t, agent, "-c", "protocol.version="+proto, "fetch", "-q", "--depth", "1", "origin")
				if got := gitCLI(t, agent, "rev-parse", "origin/main"); got != repo.Head() {
					t.Fatalf("fetched origin/main %s, want %s", got, repo.Head())
				}
				if got := gitCLI(t, agent, "show", "origin/main:clusters/c117/apps.yaml"); got != "apps: [web, api] # "+tag {
					t.Errorf("c117 = %q", got)
				}
				if got := gitCLI(t, agent, "show", "origin/main:clusters/c042/apps.yaml"); got != "apps: [web] # 42" {
					t.Errorf("c042 = %q", got)
				}
				if got := gitCLI(t, agent, "rev-list", "--count", "origin/main"); got != "1" {
					t.Errorf("depth 1 fetch left %s commits", got)
				}
				gitCLI(t, agent, "fsck", "--no-progress", "--full", "--strict")
			}
		})
	}
}
