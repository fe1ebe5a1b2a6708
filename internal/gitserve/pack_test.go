package gitserve

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// packRepo is a bare repository built commit by commit from a flat map of
// files (internal/gittest imports this package, so it cannot be used here).
type packRepo struct {
	t       *testing.T
	dir     string
	st      *filesystem.Storage
	files   map[string]string
	head    plumbing.Hash
	commits []plumbing.Hash
}

func newPackRepo(t *testing.T) *packRepo {
	t.Helper()
	dir := t.TempDir()
	if _, err := git.PlainInit(dir, true); err != nil {
		t.Fatal(err)
	}
	return &packRepo{t: t, dir: dir, st: filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault()),
		files: map[string]string{}}
}

// commit applies edits (path -> content, "" deletes) on top of the head.
func (r *packRepo) commit(edits map[string]string) plumbing.Hash {
	r.t.Helper()
	for p, c := range edits {
		if c == "" {
			delete(r.files, p)
		} else {
			r.files[p] = c
		}
	}
	tree := r.writeTree(r.files)
	when := time.Unix(1700000000+int64(len(r.commits))*60, 0)
	sig := object.Signature{Name: "T", Email: "t@example.com", When: when}
	c := &object.Commit{Author: sig, Committer: sig, Message: fmt.Sprintf("c%d\n", len(r.commits)), TreeHash: tree}
	if !r.head.IsZero() {
		c.ParentHashes = []plumbing.Hash{r.head}
	}
	r.head = r.write(c)
	r.commits = append(r.commits, r.head)
	if err := r.st.SetReference(plumbing.NewHashReference("refs/heads/main", r.head)); err != nil {
		r.t.Fatal(err)
	}
	return r.head
}

func (r *packRepo) write(o interface {
	Encode(plumbing.EncodedObject) error
}) plumbing.Hash {
	r.t.Helper()
	obj := r.st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		r.t.Fatal(err)
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// writeTree writes the tree of files (paths relative to it).
func (r *packRepo) writeTree(files map[string]string) plumbing.Hash {
	r.t.Helper()
	sub := map[string]map[string]string{}
	var entries []object.TreeEntry
	for p, c := range files {
		if dir, rest, ok := strings.Cut(p, "/"); ok {
			if sub[dir] == nil {
				sub[dir] = map[string]string{}
			}
			sub[dir][rest] = c
			continue
		}
		blob := r.st.NewEncodedObject()
		blob.SetType(plumbing.BlobObject)
		w, _ := blob.Writer()
		w.Write([]byte(c))
		w.Close()
		h, err := r.st.SetEncodedObject(blob)
		if err != nil {
			r.t.Fatal(err)
		}
		entries = append(entries, object.TreeEntry{Name: p, Mode: filemode.Regular, Hash: h})
	}
	for dir, fs := range sub {
		entries = append(entries, object.TreeEntry{Name: dir, Mode: filemode.Dir, Hash: r.writeTree(fs)})
	}
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	return r.write(&object.Tree{Entries: entries})
}

// countingStorer counts the objects read, by type.
type countingStorer struct {
	storer.EncodedObjectStorer
	reads map[plumbing.ObjectType]int
}

func (s *countingStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := s.EncodedObjectStorer.EncodedObject(t, h)
	if err == nil {
		s.reads[o.Type()]++
	}
	return o, err
}

// selectFrom runs selectObjects on a fresh storage of r, counting reads.
func (r *packRepo) selectFrom(req *uploadRequest, common []plumbing.Hash) (*selection, *countingStorer) {
	r.t.Helper()
	cs := &countingStorer{EncodedObjectStorer: filesystem.NewStorage(osfs.New(r.dir), cache.NewObjectLRUDefault()),
		reads: map[plumbing.ObjectType]int{}}
	sel, err := selectObjects(context.Background(), cs, req, common)
	if err != nil {
		r.t.Fatal(err)
	}
	return sel, cs
}

// pathObjects returns the commit's root tree, the trees down to path and the
// blob at path.
func (r *packRepo) pathObjects(commit plumbing.Hash, path string) []plumbing.Hash {
	r.t.Helper()
	c, err := object.GetCommit(r.st, commit)
	if err != nil {
		r.t.Fatal(err)
	}
	t, err := c.Tree()
	if err != nil {
		r.t.Fatal(err)
	}
	out := []plumbing.Hash{t.Hash}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		e, err := t.FindEntry(p)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, e.Hash)
		if i < len(parts)-1 {
			if t, err = object.GetTree(r.st, e.Hash); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	return out
}

func sortedHashes(hs []plumbing.Hash) []string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.String()
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// fleetRepo commits clusters/c<i>/apps.yaml for n clusters and a few apps.
func fleetRepo(t *testing.T, n int) *packRepo {
	r := newPackRepo(t)
	files := map[string]string{"README.md": "fleet\n"}
	for i := range n {
		files[fmt.Sprintf("clusters/c%03d/apps.yaml", i)] = fmt.Sprintf("apps:\n  - web # c%d\n", i)
	}
	for i := range 10 {
		files[fmt.Sprintf("apps/app%d/deployment.yaml", i)] = fmt.Sprintf("kind: Deployment\nname: app%d\n", i)
		files[fmt.Sprintf("apps/app%d/service.yaml", i)] = fmt.Sprintf("kind: Service\nname: app%d\n", i)
	}
	r.commit(files)
	return r
}

// TestSelectChangedPathOnly checks that an agent's depth-1 fetch of a commit
// that changed one file, by a client that has the previous commit, selects the
// new commit, the changed blob and the trees on its path, and reads trees
// along that path only, not the 200 cluster directories.
func TestSelectChangedPathOnly(t *testing.T) {
	const clusters = 200
	r := fleetRepo(t, clusters)
	old := r.head
	const path = "clusters/c117/apps.yaml"
	next := r.commit(map[string]string{path: "apps:\n  - web\n  - api\n"})
	// root, clusters, clusters/c117 and the blob.
	want := append([]plumbing.Hash{next}, r.pathObjects(next, path)...)
	if len(want) != 5 {
		t.Fatalf("path objects: %v", want)
	}
	tests := map[string]struct {
		req    *uploadRequest
		common []plumbing.Hash
	}{
		// What go-git and the git CLI send for "fetch --depth 1" on a depth-1 clone.
		"shallow depth 1": {req: &uploadRequest{wants: []plumbing.Hash{next}, shallows: []plumbing.Hash{old},
			depth: 1, haves: []plumbing.Hash{old}, done: true}, common: []plumbing.Hash{old}},
		"full fetch": {req: &uploadRequest{wants: []plumbing.Hash{next}, haves: []plumbing.Hash{old}, done: true},
			common: []plumbing.Hash{old}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sel, cs := r.selectFrom(tc.req, tc.common)
			if got, w := sortedHashes(sel.objects), sortedHashes(want); !slices.Equal(got, w) {
				t.Errorf("selected %d objects %v, want %d %v", len(got), got, len(w), w)
			}
			if len(sel.objects) != len(want) {
				t.Errorf("selected %d objects (with duplicates), want %d", len(sel.objects), len(want))
			}
			// Three trees of the new commit, three of the old one (root,
			// clusters, clusters/c117): proportional to the changed path.
			if n := cs.reads[plumbing.TreeObject]; n > 6 {
				t.Errorf("read %d trees, want at most 6 (the changed path on both sides; %d clusters)", n, clusters)
			}
			if n := cs.reads[plumbing.BlobObject]; n != 0 {
				t.Errorf("read %d blobs, want 0", n)
			}
			if tc.req.depth > 0 {
				if len(sel.shallow) != 1 || sel.shallow[0] != next || len(sel.unshallow) != 0 {
					t.Errorf("shallow %v unshallow %v, want shallow [%s]", sel.shallow, sel.unshallow, next)
				}
			}
		})
	}
}

// TestSelectDeepenRoundReadsNoTrees checks the git CLI's first request of a
// shallow fetch (deepen, no "done") gets its shallow update from the commits
// alone.
func TestSelectDeepenRoundReadsNoTrees(t *testing.T) {
	r := fleetRepo(t, 200)
	old := r.head
	next := r.commit(map[string]string{"clusters/c001/apps.yaml": "apps: []\n"})
	sel, cs := r.selectFrom(&uploadRequest{wants: []plumbing.Hash{next}, shallows: []plumbing.Hash{old}, depth: 1}, nil)
	if len(sel.shallow) != 1 || sel.shallow[0] != next || len(sel.objects) != 0 {
		t.Errorf("shallow %v, %d objects; want shallow [%s] and no objects", sel.shallow, len(sel.objects), next)
	}
	if n := cs.reads[plumbing.TreeObject]; n != 0 {
		t.Errorf("read %d trees, want 0", n)
	}
}

// TestSelectSeveralCommitsChangedPaths checks a fetch of several commits, each
// changing one cluster, reads trees in proportion to the changes.
func TestSelectSeveralCommitsChangedPaths(t *testing.T) {
	r := fleetRepo(t, 200)
	old := r.head
	var want []plumbing.Hash
	for _, c := range []int{3, 77, 150} {
		p := fmt.Sprintf("clusters/c%03d/apps.yaml", c)
		h := r.commit(map[string]string{p: "apps: []\n"})
		want = append(want, h)
		want = append(want, r.pathObjects(h, p)...)
	}
	sel, cs := r.selectFrom(&uploadRequest{wants: []plumbing.Hash{r.head}, haves: []plumbing.Hash{old}, done: true},
		[]plumbing.Hash{old})
	// 3 commits, 3 roots, 3 clusters trees; then one cluster tree and blob
	// per change (the same "apps: []" blob for all three).
	if got, w := sortedHashes(sel.objects), sortedHashes(want); !slices.Equal(got, w) {
		t.Errorf("selected %d objects %v, want %d %v", len(got), got, len(w), w)
	}
	// Wanted: 3 roots, 3 clusters trees, 3 cluster directories; have: root,
	// clusters and the 3 changed cluster directories.
	if n := cs.reads[plumbing.TreeObject]; n > 14 {
		t.Errorf("read %d trees, want at most 14", n)
	}
}

// TestSelectComplete checks, over a history with additions, deletions, moves,
// a file replaced by a directory and reverts, that the selection holds every
// object the client lacks and nothing the wants do not reach.
func TestSelectComplete(t *testing.T) {
	if _, err := testenv.GitCLI(); err != nil {
		t.Skip("git CLI not installed")
	}
	r := newPackRepo(t)
	steps := []map[string]string{
		{"a/x": "1", "a/y": "2", "b/c/d": "3", "b/c/e": "4", "f": "5", "g/h/i/j": "6"},
		{"a/x": "1b"},
		{"a/y": "", "a/z": "2"},                     // a rename
		{"b/c/d": "", "b/c/e": "", "k/c/d": "3"},    // a directory moved
		{"f": "", "f/inner": "7"},                   // a file replaced by a directory
		{"a/x": "1", "g/h/i/j": "6b", "g/h/q": "8"}, // a revert and a deep change
		{"f/inner": "", "f": "5"},                   // back to a file
		{"new/dir/deep/file": "9", "g/h/i/j": "6"},
		{"a/x": "", "a/z": "", "k/c/d": ""}, // directories emptied
	}
	for _, s := range steps {
		r.commit(s)
	}
	reach := map[plumbing.Hash]map[plumbing.Hash]bool{}
	reachable := func(c plumbing.Hash) map[plumbing.Hash]bool { // everything reachable, by the git CLI
		if m, ok := reach[c]; ok {
			return m
		}
		cmd := exec.Command(testenv.GitPath(), "rev-list", "--objects", "--no-object-names", c.String())
		cmd.Dir = r.dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git rev-list: %v", err)
		}
		m := map[plumbing.Hash]bool{}
		for _, l := range strings.Fields(string(out)) {
			m[plumbing.NewHash(l)] = true
		}
		reach[c] = m
		return m
	}
	treeObjects := func(c plumbing.Hash) map[plumbing.Hash]bool { // the commit's tree, with all in it
		commit, err := object.GetCommit(r.st, c)
		if err != nil {
			t.Fatal(err)
		}
		m := map[plumbing.Hash]bool{commit.TreeHash: true}
		tree, err := commit.Tree()
		if err != nil {
			t.Fatal(err)
		}
		w := object.NewTreeWalker(tree, true, nil)
		for {
			_, e, err := w.Next()
			if err != nil {
				break
			}
			m[e.Hash] = true
		}
		w.Close()
		return m
	}
	check := func(t *testing.T, sel *selection, need, allowed map[plumbing.Hash]bool) {
		got := set(sel.objects)
		for h := range need {
			if !got[h] {
				t.Errorf("missing %s", h)
			}
		}
		for h := range got {
			if !allowed[h] {
				t.Errorf("unrelated object %s", h)
			}
		}
	}
	for i, have := range r.commits {
		for j := i + 1; j < len(r.commits); j++ {
			want := r.commits[j]
			t.Run(fmt.Sprintf("%d to %d full", i, j), func(t *testing.T) {
				sel, _ := r.selectFrom(&uploadRequest{wants: []plumbing.Hash{want}, haves: []plumbing.Hash{have}, done: true},
					[]plumbing.Hash{have})
				need := map[plumbing.Hash]bool{}
				for h := range reachable(want) {
					if !reachable(have)[h] {
						need[h] = true
					}
				}
				check(t, sel, need, reachable(want))
			})
			t.Run(fmt.Sprintf("%d to %d depth 1", i, j), func(t *testing.T) {
				sel, _ := r.selectFrom(&uploadRequest{wants: []plumbing.Hash{want}, shallows: []plumbing.Hash{have},
					depth: 1, haves: []plumbing.Hash{have}, done: true}, []plumbing.Hash{have})
				need := map[plumbing.Hash]bool{want: true}
				had := treeObjects(have)
				allowed := treeObjects(want)
				for h := range allowed {
					if !had[h] {
						need[h] = true
					}
				}
				allowed[want] = true
				check(t, sel, need, allowed)
			})
		}
	}
	// Two wants (one an ancestor of the other), with two haves.
	sel, _ := r.selectFrom(&uploadRequest{wants: []plumbing.Hash{r.commits[8], r.commits[5]},
		haves: []plumbing.Hash{r.commits[1], r.commits[3]}, done: true}, []plumbing.Hash{r.commits[1], r.commits[3]})
	need := map[plumbing.Hash]bool{}
	for h := range reachable(r.commits[8]) {
		if !reachable(r.commits[3])[h] {
			need[h] = true
		}
	}
	check(t, sel, need, reachable(r.commits[8]))
	// A wanted tree and blob, with a have.
	c5, _ := object.GetCommit(r.st, r.commits[5])
	blob := r.pathObjects(r.commits[5], "g/h/q")[3]
	sel, _ = r.selectFrom(&uploadRequest{wants: []plumbing.Hash{c5.TreeHash, blob}, haves: []plumbing.Hash{r.commits[0]}, done: true},
		[]plumbing.Hash{r.commits[0]})
	need = map[plumbing.Hash]bool{blob: true}
	for h := range treeObjects(r.commits[5]) {
		if !treeObjects(r.commits[0])[h] {
			need[h] = true
		}
	}
	check(t, sel, need, treeObjects(r.commits[5]))
}
