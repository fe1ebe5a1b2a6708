package source

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// snapshot describes every entry under dir: "dir", "link:<target>" or
// "file:<perm>:<content>".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link:" + target
		case info.IsDir():
			out[rel] = "dir"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file:%o:%s", info.Mode().Perm(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wholeExport writes commit sha of s's cache into a new directory the way a first
// export does, for comparison.
func wholeExport(t *testing.T, s *Source, sha string) map[string]string {
	t.Helper()
	commit, err := s.repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := commit.Tree()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := writeTree(s.repo.Storer, tree, root, &tally{}, s.skip); err != nil {
		t.Fatal(err)
	}
	return snapshot(t, dir)
}

// remove deletes paths from the upstream work tree (the next commit records it).
func (u *upstream) remove(paths ...string) {
	u.t.Helper()
	for _, p := range paths {
		if err := os.RemoveAll(filepath.Join(u.dir, p)); err != nil {
			u.t.Fatal(err)
		}
	}
}

// TestUpdatedRevisionEqualsAWholeExport: revisions written as the difference to the
// slot's older tree (files changed, removed, added; a file turned into a directory and
// back; a symlink turned into a file; a mode change) are exactly what a whole export
// of the same commit gives.
func TestUpdatedRevisionEqualsAWholeExport(t *testing.T) {
	up := newUpstream(t)
	s := newSource(t, "file://"+up.dir)
	var written []string
	s.wrote = func(name string) error { written = append(written, name); return nil }
	first := map[string]string{"a.txt": "a\n", "dir/x.yaml": "x: 1\n", "dir/sub/y.yaml": "y: 1\n", "link": "->a.txt", "run.sh": "#!/bin/sh\n"}
	for i := range 40 {
		first[fmt.Sprintf("clusters/c%02d/apps.yaml", i)] = fmt.Sprintf("apps: [] # %d\n", i)
	}
	steps := []struct {
		name   string
		remove []string
		files  map[string]string
		chmod  map[string]os.FileMode
	}{
		{name: "first", files: first},
		{name: "change, remove, add", remove: []string{"dir/sub/y.yaml"}, files: map[string]string{"a.txt": "a\nb\n", "new/z.yaml": "z: 1\n"}},
		// go-git's worktree cannot stage a file replaced by a directory in one commit;
		// the slot written next still sees the change in one step (it is two back).
		{name: "remove a file and a link", remove: []string{"dir/x.yaml", "link"}},
		{name: "file becomes a directory, link becomes a file", files: map[string]string{"dir/x.yaml/inner.yaml": "i: 1\n", "link": "plain\n"}},
		{name: "remove a directory", remove: []string{"dir"}},
		{name: "directory becomes a file, mode change", files: map[string]string{"dir": "now a file\n"}, chmod: map[string]os.FileMode{"run.sh": 0o755}},
		{name: "one cluster bumped", files: map[string]string{"clusters/c07/apps.yaml": "apps: [] # bumped\n"}},
		{name: "another cluster bumped", files: map[string]string{"clusters/c21/apps.yaml": "apps: [] # bumped\n"}},
	}
	for i, step := range steps {
		up.remove(step.remove...)
		for p, mode := range step.chmod {
			if err := os.Chmod(filepath.Join(up.dir, p), mode); err != nil {
				t.Fatal(err)
			}
		}
		sha := up.commit(step.files, step.name)
		written = nil
		rev, err := s.Sync(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if rev.SHA != sha {
			t.Fatalf("%s: exported %s, want %s", step.name, rev.SHA, sha)
		}
		got, want := snapshot(t, rev.Dir), wholeExport(t, s, sha)
		if !maps.Equal(got, want) {
			t.Errorf("%s: the exported tree differs from a whole export\n got %v\nwant %v", step.name, got, want)
		}
		if i == len(steps)-1 {
			// This slot held the revision two commits back: exactly the two bumped
			// files differ, and only they are written (the tree has 45 files).
			slices.Sort(written)
			if !slices.Equal(written, []string{"clusters/c07/apps.yaml", "clusters/c21/apps.yaml"}) {
				t.Errorf("files written for the last revision: %v, want only the two changed since the slot's revision", written)
			}
		}
	}
}

// TestFailedExportKeepsTheCurrentTree: an export that fails half-way leaves the
// current revision's directory untouched and Last unchanged; the next Sync writes the
// half-written directory whole.
func TestFailedExportKeepsTheCurrentTree(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"}, "one")
	s := newSource(t, "file://"+up.dir)
	rev, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, rev.Dir)
	two := up.commit(map[string]string{"a.yaml": "a: 2\n", "b.yaml": "b: 2\n", "c.yaml": "c: 2\n"}, "two")
	boom := errors.New("disk full")
	n := 0
	s.wrote = func(string) error {
		if n++; n == 2 {
			return boom
		}
		return nil
	}
	if _, err := s.Sync(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Sync with a failing write: %v, want %v", err, boom)
	}
	if s.Last() != rev {
		t.Errorf("Last() = %+v after a failed export, want %+v", s.Last(), rev)
	}
	if after := snapshot(t, rev.Dir); !maps.Equal(after, before) {
		t.Errorf("current tree changed by a failed export: %v, was %v", after, before)
	}
	s.wrote = nil
	rev2, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, rev2.Dir), wholeExport(t, s, two); rev2.SHA != two || !maps.Equal(got, want) {
		t.Errorf("after the failure: %s %v, want %s %v", rev2.SHA, got, two, want)
	}
}

// TestRestartRewritesTheExportedTrees: a new Source on the same cache trusts nothing
// it finds there (TestAttackPlantedSlotIsNotTrusted): it writes the head whole, drops
// directories of the old layout (one per commit), and, once both slots hold trees it
// wrote itself, updates them by the difference again.
func TestRestartRewritesTheExportedTrees(t *testing.T) {
	up := newUpstream(t)
	cache := t.TempDir()
	open := func() *Source {
		s, err := New(Config{URL: "file://" + up.dir, CacheDir: cache, Attempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("apps/app%02d/cm.yaml", i)] = fmt.Sprintf("n: %d\n", i)
	}
	up.commit(files, "one")
	s := open()
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	two := up.commit(map[string]string{"apps/app03/cm.yaml": "n: 33\n"}, "two")
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(cache, "rev", "0123456789abcdef0123456789abcdef01234567")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}

	restarted := open()
	var written []string
	restarted.wrote = func(name string) error { written = append(written, name); return nil }
	rev, err := restarted.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rev.SHA != two || len(written) != 20 {
		t.Errorf("after a restart: revision %s with %d files written, want %s written whole (20)", rev.SHA, len(written), two)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old-layout revision directory %s kept", stale)
	}
	written = nil
	three := up.commit(map[string]string{"apps/app11/cm.yaml": "n: 111\n"}, "three")
	rev3, err := restarted.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, rev3.Dir), wholeExport(t, restarted, three); !maps.Equal(got, want) {
		t.Errorf("tree of %s differs from a whole export", three)
	}
	if len(written) != 20 {
		t.Errorf("written for %s: %d files, want 20 (the other slot held nothing this process wrote)", three, len(written))
	}
	written = nil
	four := up.commit(map[string]string{"apps/app12/cm.yaml": "n: 112\n"}, "four")
	if _, err := restarted.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(written)
	if !slices.Equal(written, []string{"apps/app11/cm.yaml", "apps/app12/cm.yaml"}) {
		t.Errorf("written for %s: %v, want the files changed since the slot's revision", four, written)
	}
}

// TestCacheStartsAfreshPastMaxPacks: every fetch adds a pack file to the cache; past
// maxPacks the cache is started afresh, and every revision is still exported right.
func TestCacheStartsAfreshPastMaxPacks(t *testing.T) {
	up := newUpstream(t)
	s := newSource(t, "file://"+up.dir)
	t.Cleanup(func() { _ = s.Close() })
	most := 0
	for i := range maxPacks + 8 {
		sha := up.commit(map[string]string{"a.yaml": fmt.Sprintf("a: %d\n", i), fmt.Sprintf("f%02d.yaml", i): "x: 1\n"}, fmt.Sprint(i))
		rev, err := s.Sync(t.Context())
		if err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
		if got, want := snapshot(t, rev.Dir), wholeExport(t, s, sha); rev.SHA != sha || !maps.Equal(got, want) {
			t.Fatalf("revision %d: %s differs from a whole export of %s", i, rev.SHA, sha)
		}
		packs, err := s.store.ObjectPacks()
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(packs))
	}
	if most > maxPacks+1 {
		t.Errorf("the cache held %d pack files, want at most %d", most, maxPacks+1)
	}
	if most < maxPacks {
		t.Errorf("the cache never held more than %d pack files: the test does not reach the limit (%d)", most, maxPacks)
	}
}

// TestOtherClustersAreLeftOut: with Config.Cluster set, the other clusters'
// directories are never exported, so commits that only touch them write nothing.
func TestOtherClustersAreLeftOut(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{
		"clusters/dev/apps.yaml": "apps: []\n", "clusters/dev/cluster.yaml": "labels: {}\n",
		"clusters/prod/apps.yaml": "apps: []\n", "clusters/qa/apps.yaml": "apps: []\n",
		"apps/web/cm.yaml": "kind: ConfigMap\n", "bases/x/k.yaml": "x: 1\n", "README.md": "fleet\n",
	}, "one")
	s, err := New(Config{URL: "file://" + up.dir, CacheDir: t.TempDir(), Cluster: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	s.wrote = func(name string) error { written = append(written, name); return nil }
	rev, err := s.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(written)
	want := []string{"README.md", "apps/web/cm.yaml", "bases/x/k.yaml", "clusters/dev/apps.yaml", "clusters/dev/cluster.yaml"}
	if !slices.Equal(written, want) {
		t.Fatalf("exported %v, want %v", written, want)
	}
	if _, err := os.Stat(filepath.Join(rev.Dir, "clusters", "prod")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("clusters/prod exported for cluster dev: %v", err)
	}
	// The second revision fills the other slot whole; from then on each slot is brought
	// forward from the revision two back, so a step writes what changed for dev in it
	// and in the step before.
	up.commit(map[string]string{"README.md": "fleet!\n"}, "two")
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		remove []string
		files  map[string]string
		want   []string
	}{
		{name: "another cluster changes", files: map[string]string{"clusters/prod/apps.yaml": "apps: [{name: web, version: '2'}]\n"},
			want: []string{"README.md"}},
		{name: "a cluster is added", files: map[string]string{"clusters/new/apps.yaml": "apps: []\n"}},
		{name: "a cluster is removed", remove: []string{"clusters/qa"}},
		{name: "this cluster changes", files: map[string]string{"clusters/dev/apps.yaml": "apps: [{name: web, version: '1'}]\n"},
			want: []string{"clusters/dev/apps.yaml"}},
		{name: "an app and another cluster change", files: map[string]string{"apps/web/cm.yaml": "kind: ConfigMap\nmetadata: {}\n", "clusters/new/apps.yaml": "apps: [{name: web, version: '3'}]\n"},
			want: []string{"apps/web/cm.yaml", "clusters/dev/apps.yaml"}},
	}
	for _, step := range steps {
		up.remove(step.remove...)
		sha := up.commit(step.files, step.name)
		written = nil
		rev, err := s.Sync(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		slices.Sort(written)
		if !slices.Equal(written, step.want) {
			t.Errorf("%s: wrote %v, want %v", step.name, written, step.want)
		}
		if got, want := snapshot(t, rev.Dir), wholeExport(t, s, sha); !maps.Equal(got, want) {
			t.Errorf("%s: tree differs from a whole export for dev\n got %v\nwant %v", step.name, got, want)
		}
		for _, other := range []string{"prod", "qa", "new"} {
			if _, err := os.Stat(filepath.Join(rev.Dir, "clusters", other)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: clusters/%s exported for cluster dev", step.name, other)
			}
		}
	}
}
