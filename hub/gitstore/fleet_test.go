package gitstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

// writeFleetSeed writes a seed of n clusters (fleet-00000, ...; labelled with their
// index and a shard of MaxBulkClusters clusters), each with its own
// labels and the app web, plus the app itself.
func writeFleetSeed(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"apps/web/app.yaml":        "namespace: web\n",
		"apps/web/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
	}
	for i := range n {
		c := fleetName(i)
		files["clusters/"+c+"/cluster.yaml"] = fmt.Sprintf("labels:\n  index: \"%d\"\n  shard: \"%d\"\n", i, i/MaxBulkClusters)
		files["clusters/"+c+"/apps.yaml"] = fmt.Sprintf("apps:\n  - name: web\n    version: \"1.%d\"\n", i)
	}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fleetName(i int) string { return fmt.Sprintf("fleet-%05d", i) }

// openFleet opens an embedded store in a new directory, seeded from seed.
func openFleet(t testing.TB, seed string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: filepath.Join(t.TempDir(), "repo.git"), Seed: seed}, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// coldSnapshot is the head's snapshot built by a new Store on the same repository:
// every cluster loaded from scratch.
func coldSnapshot(t *testing.T, s *Store) string {
	t.Helper()
	fresh, err := Open(context.Background(), Config{Dir: s.Dir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := fresh.Snapshot(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return snapshotJSON(t, sn)
}

func snapshotJSON(t *testing.T, sn *Snapshot) string {
	t.Helper()
	b, err := json.MarshalIndent(sn, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkSnapshot compares the store's (incrementally built) head snapshot with a
// cold one.
func checkSnapshot(t *testing.T, s *Store, step string) *Snapshot {
	t.Helper()
	sn, err := s.Snapshot(context.Background(), "")
	if err != nil {
		t.Fatalf("%s: Snapshot: %v", step, err)
	}
	if got, want := snapshotJSON(t, sn), coldSnapshot(t, s); got != want {
		t.Fatalf("%s: the incremental snapshot differs from a cold one:\n%s\nwant\n%s", step, got, want)
	}
	return sn
}

// gitFsck runs git fsck --strict on the repository when the git CLI is installed:
// it checks every object, the order of tree entries included.
func gitFsck(t *testing.T, dir string) {
	t.Helper()
	if _, err := testenv.GitCLI(); err != nil {
		t.Log("git is not installed: skipping git fsck")
		return
	}
	out, err := exec.Command(testenv.GitPath(), "--git-dir="+dir, "fsck", "--strict", "--no-dangling").CombinedOutput()
	if err != nil {
		t.Fatalf("git fsck: %v\n%s", err, out)
	}
}

// TestFleetSeedAndRegistrations seeds a fleet, registers more clusters, changes
// versions and an app, and checks after every step that the head's snapshot (built
// incrementally) equals one built from scratch, and that the repository is valid.
func TestFleetSeedAndRegistrations(t *testing.T) {
	ctx := context.Background()
	const n = 500
	s := openFleet(t, writeFleetSeed(t, n))
	sn := checkSnapshot(t, s, "seed")
	if len(sn.Clusters) != n {
		t.Fatalf("seed: %d clusters, want %d", len(sn.Clusters), n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		c := sn.Cluster(fleetName(i))
		if c == nil || c.Labels["index"] != fmt.Sprint(i) || len(c.Apps) != 1 || c.Apps[0].Version != fmt.Sprintf("1.%d", i) || c.Error != "" {
			t.Fatalf("seed: cluster %d is %+v", i, c)
		}
	}

	// Names that sort around the existing ones, and around each other once "/" is
	// appended to directories (a-b < a.b < a/ < a0).
	added := []string{"a", "a-b", "a0", "fleet-00000-x", "fleet-0000", "zz", "fleet-99999"}
	for _, name := range added {
		res, err := s.AddCluster(ctx, name, map[string]string{"new": "yes"}, jane, "")
		if err != nil || !res.Committed {
			t.Fatalf("AddCluster %s: %+v, %v", name, res, err)
		}
		changed, err := s.Changed(ctx, res.Previous, res.Revision)
		if err != nil || !slices.Equal(changed, []string{name}) {
			t.Fatalf("Changed after adding %s: %v, %v", name, changed, err)
		}
		checkSnapshot(t, s, "add "+name)
	}
	if _, err := s.AddCluster(ctx, fleetName(3), nil, jane, ""); !errors.As(err, new(*ExistsError)) {
		t.Fatalf("AddCluster of a seeded cluster: %v, want an ExistsError", err)
	}
	if _, err := s.SetVersion(ctx, fleetName(7), "web", "9.9.9", jane, ""); err != nil {
		t.Fatal(err)
	}
	sn = checkSnapshot(t, s, "set version")
	if v := sn.Cluster(fleetName(7)).App("web").Version; v != "9.9.9" {
		t.Fatalf("version after SetVersion: %s", v)
	}
	if _, err := s.RemoveCluster(ctx, fleetName(8), jane, ""); err != nil {
		t.Fatal(err)
	}
	sn = checkSnapshot(t, s, "remove")
	if len(sn.Clusters) != n+len(added)-1 || sn.Cluster(fleetName(8)) != nil {
		t.Fatalf("after removing a cluster: %d clusters", len(sn.Clusters))
	}

	// A change to an app every cluster lists reloads every cluster: app.yaml
	// becomes invalid, so every cluster that lists web carries an error.
	prev := s.Head()
	commitFiles(t, s, map[string]string{"apps/web/app.yaml": "drift: sometimes\n"})
	sn = checkSnapshot(t, s, "break the app")
	if c := sn.Cluster(fleetName(1)); c.Error == "" {
		t.Fatalf("a cluster listing a broken app has no error: %+v", c)
	}
	if c := sn.Cluster("a"); c.Error != "" {
		t.Fatalf("a cluster listing no app has an error: %s", c.Error)
	}
	changed, err := s.Changed(ctx, prev, s.Head())
	if err != nil || len(changed) != n-1 {
		t.Fatalf("Changed after changing an app: %d clusters, %v; want %d", len(changed), err, n-1)
	}
	gitFsck(t, s.Dir())
}

// TestSnapshotFollowsLinks checks that a cluster whose files are symbolic links to
// files outside its directory is reloaded when the link's target changes, though
// its own directory did not.
func TestSnapshotFollowsLinks(t *testing.T) {
	seed := writeFleetSeed(t, 3)
	if err := os.MkdirAll(filepath.Join(seed, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "shared", "apps.yaml"), []byte("apps:\n  - name: web\n    version: \"7\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(seed, "clusters", fleetName(1), "apps.yaml")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../shared/apps.yaml", link); err != nil {
		t.Fatal(err)
	}
	s := openFleet(t, seed)
	sn := checkSnapshot(t, s, "seed")
	if c := sn.Cluster(fleetName(1)); c.Error != "" || c.App("web") == nil || c.App("web").Version != "7" {
		t.Fatalf("linked cluster: %+v", c)
	}
	commitFiles(t, s, map[string]string{"shared/apps.yaml": "apps:\n  - name: web\n    version: \"8\"\n"})
	sn = checkSnapshot(t, s, "change the link's target")
	if v := sn.Cluster(fleetName(1)).App("web").Version; v != "8" {
		t.Fatalf("after changing the link's target: version %s, want 8", v)
	}
	commitFiles(t, s, map[string]string{"shared/apps.yaml": ""})
	sn = checkSnapshot(t, s, "remove the link's target")
	if c := sn.Cluster(fleetName(1)); c.Error == "" {
		t.Fatalf("a cluster whose apps.yaml links to nothing has no error: %+v", c)
	}
}

// commitFiles commits files to the head of the embedded repository (an empty
// content deletes the file), as a push by a person would.
func commitFiles(t *testing.T, s *Store, files map[string]string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	base, err := s.commit(s.head)
	if err != nil {
		t.Fatal(err)
	}
	baseTree, err := base.Tree()
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]gitobj.Edit{}
	for p, content := range files {
		if content == "" {
			edits[p] = gitobj.Edit{Delete: true}
			continue
		}
		h, err := gitobj.WriteBlob(s.repo.Storer, []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		edits[p] = gitobj.Edit{Hash: h, Mode: filemode.Regular}
	}
	tree, _, err := writeTree(s.trees(), baseTree, edits)
	if err != nil {
		t.Fatal(err)
	}
	sig := object.Signature{Name: "Jane", Email: "jane@example.com", When: time.Now()}
	h, err := writeCommit(s.repo.Storer, &object.Commit{Author: sig, Committer: sig, Message: "edit\n", TreeHash: tree, ParentHashes: []plumbing.Hash{base.Hash}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.publish(context.Background(), base.Hash, h); err != nil {
		t.Fatal(err)
	}
	s.setHead(h)
}
