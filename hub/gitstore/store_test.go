package gitstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

var (
	jane = Author{Name: "Jane Doe", Email: "jane@example.com"}
	bob  = Author{Name: "Bob Roe", Email: "bob@example.com"}
)

// openSeeded opens an embedded store seeded from testdata/seed.
func openSeeded(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: filepath.Join(t.TempDir(), "repo.git"), Seed: filepath.Join("testdata", "seed")}, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// fileAt reads a file at a revision of the repository in dir, through a
// separate go-git handle (what another process would see).
func fileAt(t *testing.T, dir, rev, path string) (string, *object.Commit) {
	t.Helper()
	r, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(plumbing.NewHash(rev))
	if err != nil {
		t.Fatalf("commit %s: %v", rev, err)
	}
	f, err := c.File(path)
	if err != nil {
		return "", c
	}
	s, err := f.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// branchHead reads the branch of the repository in dir from disk.
func branchHead(t *testing.T, dir string) string {
	t.Helper()
	r, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName("main"), false)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Hash().String()
}

func TestSetVersionCommits(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	before := s.Head()
	res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, before)
	if err != nil {
		t.Fatalf("SetVersion: %v", err)
	}
	want := WriteResult{Revision: res.Revision, Previous: before, Committed: true,
		Message: "set web=1.4.2 on prod-eu", Before: "1.4.1", After: "1.4.2", Attempts: 1}
	if *res != want {
		t.Errorf("result = %+v, want %+v", *res, want)
	}
	if s.Head() != res.Revision || branchHead(t, s.Dir()) != res.Revision {
		t.Errorf("head = %s, on disk %s, want %s", s.Head(), branchHead(t, s.Dir()), res.Revision)
	}
	content, c := fileAt(t, s.Dir(), res.Revision, "clusters/prod-eu/apps.yaml")
	if c.Author.Name != jane.Name || c.Author.Email != jane.Email {
		t.Errorf("author = %s <%s>, want %s", c.Author.Name, c.Author.Email, jane)
	}
	if c.Committer.Name != defaultCommitter().Name {
		t.Errorf("committer = %s, want %s", c.Committer.Name, defaultCommitter().Name)
	}
	if c.Message != "set web=1.4.2 on prod-eu\n" {
		t.Errorf("message = %q", c.Message)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != before {
		t.Errorf("parents = %v, want [%s]", c.ParentHashes, before)
	}
	golden(t, "store/set-web-prod-eu.golden", []byte(content))
	if !strings.Contains(content, "# pinned until the CDN fix lands") || !strings.Contains(content, "# Internal API.") {
		t.Errorf("comments lost:\n%s", content)
	}
	// Only apps.yaml changed.
	for _, p := range []string{"clusters/staging/apps.yaml", "clusters/prod-eu/cluster.yaml", "apps/web/deployment.yaml"} {
		a, _ := fileAt(t, s.Dir(), before, p)
		b, _ := fileAt(t, s.Dir(), res.Revision, p)
		if a != b {
			t.Errorf("%s changed", p)
		}
	}
	sn, err := s.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := sn.Cluster("prod-eu").App("web").Version; got != "1.4.2" || sn.Revision != res.Revision {
		t.Errorf("snapshot: web=%s at %s", got, sn.Revision)
	}
	// Setting the same version again commits nothing.
	again, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, "")
	if err != nil || again.Committed || again.Revision != res.Revision {
		t.Errorf("same version again: %+v, %v", again, err)
	}
}

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	sn, err := s.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sn.Apps, ","); got != "api,broken,web,worker" {
		t.Errorf("apps = %s", got)
	}
	prod := sn.Cluster("prod-eu")
	if prod == nil || prod.Labels["env"] != "prod" || prod.Vars["DOMAIN"] != "eu.example.com" || prod.Error != "" {
		t.Fatalf("prod-eu = %+v", prod)
	}
	if len(prod.Apps) != 2 || prod.Apps[0].Name != "web" || prod.Apps[0].Vars["replicas"] != "3" || prod.Apps[1].Version != "2.0.0" {
		t.Errorf("prod-eu apps = %+v", prod.Apps)
	}
	if sn.Cluster("nope") != nil {
		t.Error("unknown cluster found")
	}
	again, _ := s.Snapshot(ctx, "")
	if again != sn {
		t.Error("head snapshot not cached")
	}
	var nf *NotFoundError
	if _, err := s.Snapshot(ctx, strings.Repeat("ab", 20)); !errors.As(err, &nf) || nf.Kind != KindRevision {
		t.Errorf("unknown revision: %v", err)
	}
	if _, err := s.Cluster(ctx, "nope"); !errors.As(err, &nf) || nf.Kind != KindCluster {
		t.Errorf("unknown cluster: %v", err)
	}
}

func TestWriteErrorsCommitNothing(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	head := s.Head()
	type op func() (*WriteResult, error)
	set := func(cluster, app, version string) op {
		return func() (*WriteResult, error) { return s.SetVersion(ctx, cluster, app, version, jane, "") }
	}
	tests := map[string]struct {
		op    op
		field Input  // *ValidationError field
		file  string // *ContentError file
		kind  Kind   // *NotFoundError kind
		is    error  // errors.Is target
	}{
		"cluster with slash":   {op: set("prod/eu", "web", "1"), field: InputCluster},
		"cluster with dotdot":  {op: set("..", "web", "1"), field: InputCluster},
		"cluster traversal":    {op: set("../../etc", "web", "1"), field: InputCluster},
		"cluster control char": {op: set("prod\x00", "web", "1"), field: InputCluster},
		"cluster newline":      {op: set("prod\n", "web", "1"), field: InputCluster},
		"cluster upper case":   {op: set("Prod", "web", "1"), field: InputCluster},
		"cluster empty":        {op: set("", "web", "1"), field: InputCluster},
		"app with slash":       {op: set("prod-eu", "web/../api", "1"), field: InputApp},
		"app too long":         {op: set("prod-eu", strings.Repeat("a", 64), "1"), field: InputApp},
		"version with space":   {op: set("prod-eu", "web", "1.0 beta"), field: InputVersion},
		"version with newline": {op: set("prod-eu", "web", "1.0\nkind: Secret"), field: InputVersion},
		"version too long":     {op: set("prod-eu", "web", strings.Repeat("1", 129)), field: InputVersion},
		"version control char": {op: set("prod-eu", "web", "1.0\x07"), field: InputVersion},
		"version quote":        {op: set("prod-eu", "web", `1"`), field: InputVersion},
		"version empty":        {op: set("prod-eu", "web", ""), field: InputVersion},
		"unknown cluster":      {op: set("prod-us", "web", "1"), kind: KindCluster},
		"unknown app":          {op: set("prod-eu", "nope", "1"), kind: KindApp},
		"invalid app.yaml":     {op: set("prod-eu", "broken", "1"), file: "apps/broken/app.yaml"},
		"unset unlisted":       {op: func() (*WriteResult, error) { return s.Unset(ctx, "prod-eu", "worker", jane, "") }, kind: KindApp},
		"rollback unlisted":    {op: func() (*WriteResult, error) { return s.Rollback(ctx, "prod-eu", "worker", jane, "") }, kind: KindApp},
		"rollback no history":  {op: func() (*WriteResult, error) { return s.Rollback(ctx, "prod-eu", "web", jane, "") }, kind: KindPreviousVersion},
		"author without name": {op: func() (*WriteResult, error) {
			return s.SetVersion(ctx, "prod-eu", "web", "1", Author{Email: "a@b"}, "")
		}, field: InputAuthorName},
		"author email with angle": {op: func() (*WriteResult, error) {
			return s.SetVersion(ctx, "prod-eu", "web", "1", Author{Name: "x", Email: "a>b"}, "")
		}, field: InputAuthorEmail},
		"author name newline": {op: func() (*WriteResult, error) {
			return s.SetVersion(ctx, "prod-eu", "web", "1", Author{Name: "x\ny", Email: "a@b"}, "")
		}, field: InputAuthorName},
		"ifMatch short": {op: func() (*WriteResult, error) { return s.SetVersion(ctx, "prod-eu", "web", "1", jane, "abc") }, field: InputIfMatch},
		"ifMatch not hex": {op: func() (*WriteResult, error) {
			return s.SetVersion(ctx, "prod-eu", "web", "1", jane, strings.Repeat("g", 40))
		}, field: InputIfMatch},
		"ifMatch unknown revision": {op: func() (*WriteResult, error) {
			return s.SetVersion(ctx, "prod-eu", "web", "1", jane, strings.Repeat("ab", 20))
		}, is: ErrStaleRevision},
		"add existing cluster":   {op: func() (*WriteResult, error) { return s.AddCluster(ctx, "prod-eu", nil, jane, "") }, is: errExists},
		"add cluster bad label":  {op: func() (*WriteResult, error) { return s.AddCluster(ctx, "new", map[string]string{"a b": "c"}, jane, "") }, file: "clusters/new/cluster.yaml"},
		"remove unknown cluster": {op: func() (*WriteResult, error) { return s.RemoveCluster(ctx, "nope", jane, "") }, kind: KindCluster},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := tc.op()
			if err == nil {
				t.Fatalf("no error; result %+v", res)
			}
			var ve *ValidationError
			var ce *ContentError
			var nf *NotFoundError
			var ee *ExistsError
			switch {
			case tc.field != "":
				if !errors.As(err, &ve) || ve.Field != tc.field {
					t.Errorf("err = %v (%T), want *ValidationError on %s", err, err, tc.field)
				}
			case tc.file != "":
				if !errors.As(err, &ce) || ce.File != tc.file {
					t.Errorf("err = %v (%T), want *ContentError on %s", err, err, tc.file)
				}
			case tc.kind != "":
				if !errors.As(err, &nf) || nf.Kind != tc.kind {
					t.Errorf("err = %v (%T), want *NotFoundError of kind %s", err, err, tc.kind)
				}
			case tc.is == errExists:
				if !errors.As(err, &ee) {
					t.Errorf("err = %v (%T), want *ExistsError", err, err)
				}
			case !errors.Is(err, tc.is):
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if s.Head() != head || branchHead(t, s.Dir()) != head {
				t.Errorf("head moved to %s", s.Head())
			}
		})
	}
}

// errExists marks the tests expecting an *ExistsError.
var errExists = errors.New("exists")

func TestConcurrentWritersSameIfMatch(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	base := s.Head()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, v := range []string{"1.5.0", "1.6.0"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.SetVersion(ctx, "prod-eu", "web", v, jane, base)
		}()
	}
	wg.Wait()
	ok, stale := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrStaleRevision):
			stale++
			if !strings.Contains(err.Error(), "clusters/prod-eu/apps.yaml") {
				t.Errorf("stale error does not name the file: %v", err)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || stale != 1 {
		t.Errorf("ok=%d stale=%d, want 1 and 1 (%v)", ok, stale, errs)
	}
	// A write to another cluster's file with the same old revision is not stale.
	if _, err := s.SetVersion(ctx, "staging", "web", "1.6.0", bob, base); err != nil {
		t.Errorf("write to another file with an older If-Match: %v", err)
	}
}

func TestUnsetRollbackHistory(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	for _, v := range []string{"1.4.2", "1.4.3"} {
		if _, err := s.SetVersion(ctx, "prod-eu", "web", v, jane, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetVersion(ctx, "staging", "web", "9.9.9", bob, ""); err != nil {
		t.Fatal(err)
	}
	res, err := s.Rollback(ctx, "prod-eu", "web", bob, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Message != "rollback web on prod-eu to 1.4.2" || res.Before != "1.4.3" || res.After != "1.4.2" {
		t.Errorf("rollback = %+v", res)
	}
	// Rolling back again returns to where it started.
	if res, err = s.Rollback(ctx, "prod-eu", "web", bob, res.Revision); err != nil || res.After != "1.4.3" {
		t.Errorf("second rollback = %+v, %v", res, err)
	}
	if _, err := s.Unset(ctx, "prod-eu", "api", jane, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetVersion(ctx, "prod-eu", "worker", "0.1", jane, ""); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, "prod-eu", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h {
		got = append(got, e.Message+" ["+e.Before+"->"+e.After+"] "+e.Author.Name)
	}
	want := []string{
		"rollback web on prod-eu to 1.4.3 [1.4.2->1.4.3] Bob Roe",
		"rollback web on prod-eu to 1.4.2 [1.4.3->1.4.2] Bob Roe",
		"set web=1.4.3 on prod-eu [1.4.2->1.4.3] Jane Doe",
		"set web=1.4.2 on prod-eu [1.4.1->1.4.2] Jane Doe",
		"Seed the GitOps repository from seed [->1.4.1] Outpost hub",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history of web on prod-eu:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	all, err := s.History(ctx, "prod-eu", "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Message != "set worker=0.1 on prod-eu" || all[1].Message != "unset api on prod-eu" {
		t.Errorf("history of prod-eu: %+v", all)
	}
	content, _ := fileAt(t, s.Dir(), s.Head(), "clusters/prod-eu/apps.yaml")
	golden(t, "store/after-history.golden", []byte(content))
}

func TestAddRemoveCluster(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	res, err := s.AddCluster(ctx, "edge-1", map[string]string{"env": "edge", "topology.kubernetes.io/region": "eu-west"}, jane, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Message != "add cluster edge-1" {
		t.Errorf("message %q", res.Message)
	}
	cy, _ := fileAt(t, s.Dir(), res.Revision, "clusters/edge-1/cluster.yaml")
	ay, _ := fileAt(t, s.Dir(), res.Revision, "clusters/edge-1/apps.yaml")
	golden(t, "store/add-cluster.golden", []byte(cy+"---\n"+ay))
	if _, err := s.SetVersion(ctx, "edge-1", "api", "2.0.0", jane, ""); err != nil {
		t.Fatal(err)
	}
	c, err := s.Cluster(ctx, "edge-1")
	if err != nil || c.Labels["env"] != "edge" || len(c.Apps) != 1 {
		t.Fatalf("edge-1 = %+v, %v", c, err)
	}
	if _, err := s.RemoveCluster(ctx, "edge-1", jane, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cluster(ctx, "edge-1"); err == nil {
		t.Error("removed cluster still there")
	}
	if content, _ := fileAt(t, s.Dir(), s.Head(), "clusters/edge-1/apps.yaml"); content != "" {
		t.Error("clusters/edge-1 still in the tree")
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	res, err := s.SetVersion(ctx, "prod-eu", "web", "1.4.2", jane, "")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, Config{Dir: s.Dir(), Seed: "does-not-matter"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Head() != res.Revision {
		t.Errorf("reopened head %s, want %s", s2.Head(), res.Revision)
	}
}

func TestSeedValidation(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(filepath.Join(seed, "clusters", "bad"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "clusters", "bad", "apps.yaml"), []byte("apps:\n  - name: missing\n    version: \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Dir: filepath.Join(dir, "repo.git"), Seed: seed}, nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != InputSeed {
		t.Fatalf("err = %v, want a *ValidationError on seed", err)
	}
	// An empty seed gives an empty first commit.
	s, err := Open(context.Background(), Config{Dir: filepath.Join(dir, "empty.git")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshot(context.Background(), "")
	if err != nil || len(sn.Clusters) != 0 {
		t.Fatalf("empty repository snapshot: %+v, %v", sn, err)
	}
}

func TestChangedStore(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	r0 := s.Head()
	r1 := mustSet(t, s, "prod-eu", "web", "1.4.2")
	r2 := mustSet(t, s, "staging", "web", "1.6.0")
	tests := map[string]struct {
		old, new string
		want     string
	}{
		"one cluster":   {old: r0, new: r1, want: "prod-eu"},
		"two commits":   {old: r0, new: r2, want: "prod-eu,staging"},
		"other cluster": {old: r1, new: r2, want: "staging"},
		"same":          {old: r2, new: r2, want: ""},
		"backwards":     {old: r2, new: r1, want: "staging"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := s.Changed(ctx, tc.old, tc.new)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("Changed = %v, want %s", got, tc.want)
			}
		})
	}
	var nf *NotFoundError
	if _, err := s.Changed(ctx, r0, strings.Repeat("cd", 20)); !errors.As(err, &nf) {
		t.Errorf("unknown revision: %v", err)
	}
}

func mustSet(t *testing.T, s *Store, cluster, app, version string) string {
	t.Helper()
	res, err := s.SetVersion(context.Background(), cluster, app, version, jane, "")
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

// TestTreeFSMatchesDisk reads the seed through treeFS and compares it with
// the directory it came from.
func TestTreeFSMatchesDisk(t *testing.T) {
	s := openSeeded(t)
	s.mu.Lock()
	c, err := s.commit(s.head)
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	fsys := newTreeFS(newTreeCache(s.repo.Storer), tree)
	seed := filepath.Join("testdata", "seed")
	err = filepath.Walk(seed, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(seed, p)
		want, _ := os.ReadFile(p)
		f, err := fsys.Open(filepath.ToSlash(rel))
		if err != nil {
			t.Errorf("open %s: %v", rel, err)
			return nil
		}
		defer f.Close()
		got, _ := io.ReadAll(f)
		if string(got) != string(want) {
			t.Errorf("%s differs", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Open("clusters/nope/apps.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := fsys.Open("../etc/passwd"); err == nil {
		t.Error("path outside the tree opened")
	}
}
