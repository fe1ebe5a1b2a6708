package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// upstream is a Git repository with a work tree that tests commit to.
type upstream struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &upstream{t: t, dir: dir, repo: repo}
}

// commit writes files (a value of "->target" makes a symlink) and commits them.
func (u *upstream) commit(files map[string]string, msg string) string {
	u.t.Helper()
	for name, content := range files {
		p := filepath.Join(u.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				u.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	wt, err := u.repo.Worktree()
	if err != nil {
		u.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		u.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Now()}})
	if err != nil {
		u.t.Fatal(err)
	}
	return h.String()
}

func newSource(t *testing.T, url string) *Source {
	t.Helper()
	s, err := New(Config{URL: url, CacheDir: t.TempDir(), Attempts: 2, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSyncFollowsTheBranch(t *testing.T) {
	up := newUpstream(t)
	zero := up.commit(map[string]string{"README.md": "fleet\n"}, "zero")
	first := up.commit(map[string]string{
		"clusters/dev/apps.yaml": "apps: []\n",
		"apps/web/cm.yaml":       "kind: ConfigMap\n",
		"apps/web/link.yaml":     "->cm.yaml",
	}, "first\n\nbody")
	s := newSource(t, "file://"+up.dir)
	rev, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rev.SHA != first || rev.Message != "first" {
		t.Fatalf("rev = %+v, want %s with message 'first'", rev, first)
	}
	if data, err := os.ReadFile(filepath.Join(rev.Dir, "apps/web/cm.yaml")); err != nil || string(data) != "kind: ConfigMap\n" {
		t.Errorf("exported cm.yaml = %q, %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(rev.Dir, "apps/web/link.yaml")); err != nil || target != "cm.yaml" {
		t.Errorf("symlink = %q, %v; want it kept as a symlink to cm.yaml", target, err)
	}

	// Unchanged branch: the same revision, nothing new exported.
	again, err := s.Sync(t.Context())
	if err != nil || again != rev {
		t.Fatalf("second Sync = %+v, %v; want the same revision object", again, err)
	}

	second := up.commit(map[string]string{"apps/web/cm.yaml": "kind: ConfigMap\nmetadata: {}\n"}, "second")
	rev2, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rev2.SHA != second {
		t.Fatalf("rev = %s, want %s", rev2.SHA, second)
	}
	if rev2.Dir == rev.Dir {
		t.Errorf("second revision exported into the first one's directory %s; want the other slot", rev.Dir)
	}
	if data, err := os.ReadFile(filepath.Join(rev2.Dir, "apps/web/cm.yaml")); err != nil || string(data) != "kind: ConfigMap\nmetadata: {}\n" {
		t.Errorf("second revision's cm.yaml = %q, %v", data, err)
	}
	// The fetches are shallow: the commit before the first synced one never came.
	if _, err := s.repo.CommitObject(plumbing.NewHash(zero)); err == nil {
		t.Errorf("commit %s (older than the first sync) fetched; want depth-1 fetches", zero)
	}
}

func TestUnavailableKeepsLastRevision(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"a.yaml": "a: 1\n"}, "one")
	s := newSource(t, "file://"+up.dir)
	rev, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(up.dir, up.dir+".gone"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Sync(t.Context())
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
	if last := s.Last(); last != rev {
		t.Errorf("Last() = %+v, want the last good revision %+v", last, rev)
	}
	if _, err := os.Stat(filepath.Join(rev.Dir, "a.yaml")); err != nil {
		t.Errorf("last good tree gone: %v", err)
	}
}

func TestErrorsNeverCarryCredentials(t *testing.T) {
	s := newSource(t, "http://outpost:hunter2@127.0.0.1:1/fleet.git")
	_, err := s.Sync(t.Context())
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestMissingBranchFailsWithoutRetrying(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"a.yaml": "a: 1\n"}, "one")
	s, err := New(Config{URL: "file://" + up.dir, Branch: "release", CacheDir: t.TempDir(), Attempts: 5, Backoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Sync(t.Context())
	if err == nil || !strings.Contains(err.Error(), `branch "release" not found`) {
		t.Fatalf("err = %v, want branch not found", err)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("a missing branch was retried (took %s)", time.Since(start))
	}
}

// TestBranchMovesBetweenListingAndFetch: a commit landing after the ref listing and
// before the depth-1 fetch must not fail the sync; the newer commit is exported.
func TestBranchMovesBetweenListingAndFetch(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"a.yaml": "a: 1\n"}, "one")
	s := newSource(t, "file://"+up.dir)
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	up.commit(map[string]string{"a.yaml": "a: 2\n"}, "two") // listed
	var third string
	s.afterHead = func() {
		third = up.commit(map[string]string{"a.yaml": "a: 3\n"}, "three") // lands before the fetch
		s.afterHead = nil
	}
	rev, err := s.Sync(t.Context())
	if err != nil {
		t.Fatalf("Sync after the branch moved during it: %v", err)
	}
	if rev.SHA != third {
		t.Fatalf("exported %s, want the fetched head %s", rev.SHA, third)
	}
	if data, _ := os.ReadFile(filepath.Join(rev.Dir, "a.yaml")); string(data) != "a: 3\n" {
		t.Errorf("a.yaml = %q, want the newest content", data)
	}
}

// A fetch cut short by a full disk leaves a truncated pack the cache's index still
// names: the objects "exist" for every later fetch, which answers "already up to
// date", and cannot be read. Sync starts the cache afresh and exports the commit.
func TestSyncRecoversFromATruncatedPack(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"clusters/dev/apps.yaml": "apps: []\n"}, "first")
	s := newSource(t, "file://"+up.dir)
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("data: 0123456789abcdef\n", 4096)
	second := up.commit(map[string]string{"apps/web/cm.yaml": "kind: ConfigMap\n" + big}, "second")
	if err := s.fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	packs, err := filepath.Glob(filepath.Join(s.cfg.CacheDir, "repo.git", "objects", "pack", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("packs: %v, %v", packs, err)
	}
	newest := packs[0]
	for _, p := range packs {
		a, _ := os.Stat(p)
		b, _ := os.Stat(newest)
		if a.ModTime().After(b.ModTime()) || a.Size() > b.Size() {
			newest = p
		}
	}
	fi, _ := os.Stat(newest)
	if err := os.Truncate(newest, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	// Reopen, as a restarted agent would.
	s2, err := New(Config{URL: "file://" + up.dir, CacheDir: s.cfg.CacheDir, Attempts: 2, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s2.Sync(t.Context())
	if err != nil {
		t.Fatalf("Sync after a fetch cut short: %v", err)
	}
	if rev.SHA != second {
		t.Fatalf("rev = %s, want %s", rev.SHA, second)
	}
	if data, err := os.ReadFile(filepath.Join(rev.Dir, "apps/web/cm.yaml")); err != nil || !strings.HasSuffix(string(data), big) {
		t.Errorf("exported cm.yaml: %d bytes, %v", len(data), err)
	}
}
