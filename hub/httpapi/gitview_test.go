package httpapi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

// pkt encodes one pkt-line.
func pkt(l string) string { return fmt.Sprintf("%04x%s", len(l)+4, l) }

// uploadPack sends a hand-made upload-pack request body and returns the answer.
func (h *testHub) uploadPack(t *testing.T, cluster, token, body string) string {
	t.Helper()
	r := h.do(t, "POST", "/git/"+cluster+".git/git-upload-pack", token, body, "Content-Type", "application/x-git-upload-pack-request")
	return string(r.body)
}

// uploadPackWant asks for want in one round (want, flush, done) and returns the answer.
func (h *testHub) uploadPackWant(t *testing.T, cluster, token, want string) string {
	t.Helper()
	return h.uploadPack(t, cluster, token, pkt("want "+want+" side-band-64k ofs-delta\n")+"0000"+pkt("done\n"))
}

// TestAttackAgentTokenReadsOnlyItsClusterView: an agent token gets its cluster's view
// of the repository (security review M4): no other cluster's directory, no history, and
// a hand-made want of any object outside the view (the real head commit, another
// cluster's apps.yaml blob) is refused. The git CLI accepts the view, clones it and
// fetches the next commit incrementally; the agent reports the source commit.
func TestAttackAgentTokenReadsOnlyItsClusterView(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	r, err := git.CloneContext(context.Background(), memory.NewStorage(), memfs.New(),
		&git.CloneOptions{URL: h.url + "/git/prod-eu.git", Auth: &githttp.BasicAuth{Username: "agent", Password: tok}})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := r.Head()
	c, err := r.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ParentHashes) != 0 {
		t.Errorf("view commit has parents %v: history is served", c.ParentHashes)
	}
	tree, _ := c.Tree()
	var files []string
	_ = tree.Files().ForEach(func(f *object.File) error { files = append(files, f.Name); return nil })
	joined := strings.Join(files, " ")
	if strings.Contains(joined, "clusters/staging") || !strings.Contains(joined, "clusters/prod-eu/apps.yaml") || !strings.Contains(joined, "apps/web/") {
		t.Errorf("view files: %v, want apps/ and clusters/prod-eu/ only among clusters", files)
	}
	if n, _ := r.CommitObjects(); n != nil {
		count := 0
		_ = n.ForEach(func(*object.Commit) error { count++; return nil })
		if count != 1 {
			t.Errorf("%d commits fetched, want the view's one", count)
		}
	}

	// Objects outside the view cannot be wanted.
	snapTree := realTree(t, h)
	staging, err := snapTree.File("clusters/staging/apps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"the real head commit": h.git.Head(), "staging's apps.yaml": staging.Hash.String()} {
		if ans := h.uploadPackWant(t, "prod-eu", tok, want); !strings.Contains(ans, "ERR ") || strings.Contains(ans, "PACK") {
			t.Errorf("want of %s: %q, want an ERR line and no pack", name, ans[:min(len(ans), 120)])
		}
	}
	// A have of another cluster's blob is not acknowledged: it would tell that it exists.
	probe := pkt("want "+head.Hash().String()+" multi_ack_detailed\n") + "0000" + pkt("have "+staging.Hash.String()+"\n") + "0000"
	if ans := h.uploadPack(t, "prod-eu", tok, probe); strings.Contains(ans, "ACK "+staging.Hash.String()) || !strings.Contains(ans, "NAK") {
		t.Errorf("have of staging's blob answered %q, want a NAK", ans)
	}
	// An admin still may.
	if ans := h.uploadPackWant(t, "prod-eu", janeToken, h.git.Head()); strings.Contains(ans, "ERR ") {
		t.Errorf("admin want of the head: %q", ans[:min(len(ans), 120)])
	}

	// The git CLI clones the view, and fetches the next commit by its difference.
	gitBin, err := testenv.GitCLI()
	if err != nil {
		t.Skip("git CLI not installed")
	}
	dir := t.TempDir()
	url := strings.Replace(h.url, "http://", "http://agent:"+tok+"@", 1) + "/git/prod-eu.git"
	run := func(args ...string) string {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("clone", "--depth=1", url, "view")
	if _, err := os.Stat(filepath.Join(dir, "view", "clusters", "staging")); err == nil {
		t.Error("git CLI clone holds clusters/staging")
	}
	res, err := h.git.SetVersion(context.Background(), "prod-eu", "web", "9.9.9", gitstore.Author{Name: "Jane", Email: "j@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "view")
	run("fetch", "--depth=1", "origin")
	log := run("log", "-1", "--format=%B", "origin/main")
	if !strings.Contains(log, apiv1.ViewSourceTrailer+res.Revision) {
		t.Errorf("fetched view of the next commit: %q, want it to name %s", log, res.Revision)
	}
	run("fsck", "--no-dangling")
}

// realTree returns the root tree of the hub's head, read from its repository.
func realTree(t *testing.T, h *testHub) *object.Tree {
	t.Helper()
	repo, err := git.PlainOpen(h.git.Dir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(h.git.Head()))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// A fetch that lists refs just before a commit wants the view of the previous head:
// it is still served (no "not our ref" and a retry at every fleet-wide commit), to
// that cluster only.
func TestPreviousViewStaysWantableForItsCluster(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	prod := h.register(t, "prod-eu")
	staging := h.register(t, "staging")
	r, err := git.CloneContext(context.Background(), memory.NewStorage(), memfs.New(),
		&git.CloneOptions{URL: h.url + "/git/prod-eu.git", Auth: &githttp.BasicAuth{Username: "agent", Password: prod}})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := r.Head()
	old := head.Hash().String()
	if _, err := h.git.SetVersion(context.Background(), "prod-eu", "web", "9.9.9", gitstore.Author{Name: "Jane", Email: "j@example.com"}, ""); err != nil {
		t.Fatal(err)
	}
	if ans := h.uploadPackWant(t, "prod-eu", prod, old); strings.Contains(ans, "ERR ") || !strings.Contains(ans, "PACK") {
		t.Fatalf("want of prod-eu's previous view: %q, want a pack", ans[:min(len(ans), 160)])
	}
	if ans := h.uploadPackWant(t, "staging", staging, old); !strings.Contains(ans, "ERR ") || strings.Contains(ans, "PACK") {
		t.Fatalf("staging's want of prod-eu's view: %q, want an ERR line and no pack", ans[:min(len(ans), 160)])
	}
}
