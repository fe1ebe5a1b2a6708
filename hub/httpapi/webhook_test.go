package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gittest"
)

// sign returns a GitHub X-Hub-Signature-256 of body.
func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// pushBody is a push payload as the three providers send it (fields the hub does
// not read included).
func pushBody(ref, after string) string {
	return `{"ref":"` + ref + `","before":"0000000000000000000000000000000000000000","after":"` + after +
		`","repository":{"full_name":"acme/gitops"},"commits":[{"id":"` + after + `","message":"direct edit"}]}`
}

// newRemoteHub starts a Git server seeded with testdata/seed and a hub cloning it.
func newRemoteHub(t *testing.T, secret string) (*testHub, *gittest.Server) {
	t.Helper()
	srv := gittest.New(t, gittest.WithToken("git-token-0123456789"))
	srv.Commit(t, seedFiles(t), "seed", "Seeder <seed@example.com>")
	return newTestHub(t, t.TempDir(), withRemote(srv), withWebhookSecret(secret)), srv
}

func TestWebhookWakesTheChangedClustersLongPoll(t *testing.T) {
	const secret = "webhook-s3cret"
	h, srv := newRemoteHub(t, secret)
	tok := h.register(t, "prod-eu")
	first := decode[apiv1.DesiredRevision](t, h.do(t, "GET", apiv1.DesiredPath+"?cluster=prod-eu", tok, nil), http.StatusOK)
	poll := h.longPoll(tok, "prod-eu", first.Revision)
	h.waitForWaiters(t, 1)

	// A direct commit to another cluster, announced: prod-eu's long-poll holds on.
	other := srv.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"1.6.0\"\n"}, "staging to 1.6.0", "Pat <pat@example.com>")
	body := pushBody("refs/heads/main", other)
	wh := decode[WebhookResponse](t, h.do(t, "POST", WebhookPath, "", body,
		"X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, body)), http.StatusOK)
	if !wh.Refreshed || wh.Revision != other || wh.Provider != "github" || h.git.Head() != other {
		t.Fatalf("webhook = %+v, hub head %s, want %s", wh, h.git.Head(), other)
	}
	select {
	case p := <-poll:
		t.Fatalf("the long-poll answered a commit to another cluster: %s", p.r.body)
	case <-time.After(500 * time.Millisecond):
	}

	// A direct commit to prod-eu: a bad signature fetches nothing, a valid one wakes it.
	mine := srv.Commit(t, map[string]string{"clusters/prod-eu/apps.yaml": "apps:\n  - name: web\n    version: \"1.4.9\"\n"}, "prod-eu web 1.4.9", "Pat <pat@example.com>")
	body = pushBody("refs/heads/main", mine)
	wantError(t, h.do(t, "POST", WebhookPath, "", body, "X-GitHub-Event", "push", "X-Hub-Signature-256", sign("wrong", body)),
		http.StatusUnauthorized, apiv1.CodeUnauthorized, "")
	if h.git.Head() != other {
		t.Fatalf("a badly signed webhook moved the head to %s", h.git.Head())
	}
	start := time.Now()
	wh = decode[WebhookResponse](t, h.do(t, "POST", WebhookPath, "", body, "X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, body)), http.StatusOK)
	if !wh.Refreshed || wh.Revision != mine || wh.Previous != other {
		t.Errorf("webhook = %+v", wh)
	}
	select {
	case p := <-poll:
		ans := decode[apiv1.DesiredRevision](t, p.r, http.StatusOK)
		if !ans.Changed || ans.Revision != mine {
			t.Errorf("long-poll = %+v, want changed at %s", ans, mine)
		}
		t.Logf("long-poll answered %v after the webhook was sent (fetch included)", p.at.Sub(start).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not answer the webhook within 10 s")
	}
}

func TestWebhookProviders(t *testing.T) {
	const secret = "webhook-s3cret"
	h, srv := newRemoteHub(t, secret)
	cases := map[string]struct {
		hdr       func(body string) []string
		ref       string
		refreshed bool
		provider  string
	}{
		"gitlab push": {func(string) []string { return []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret} }, "refs/heads/main", true, "gitlab"},
		"gitea push": {func(b string) []string {
			return []string{"X-Gitea-Event", "push", "X-Gitea-Signature", strings.TrimPrefix(sign(secret, b), "sha256=")}
		}, "refs/heads/main", true, "gitea"},
		"github ping": {func(b string) []string {
			return []string{"X-GitHub-Event", "ping", "X-Hub-Signature-256", sign(secret, b)}
		}, "", false, "github"},
		"github other branch": {func(b string) []string {
			return []string{"X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, b)}
		}, "refs/heads/dev", false, "github"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			head := srv.Commit(t, map[string]string{"README.md": name}, name, "")
			body := pushBody(tc.ref, head)
			wh := decode[WebhookResponse](t, h.do(t, "POST", WebhookPath, "", body, tc.hdr(body)...), http.StatusOK)
			if wh.Refreshed != tc.refreshed || wh.Provider != tc.provider || (tc.refreshed && wh.Revision != head) {
				t.Errorf("webhook = %+v", wh)
			}
		})
	}
}

func TestSetVersionAfterDirectRemoteCommit(t *testing.T) {
	h, srv := newRemoteHub(t, "x-secret")
	// A person commits directly to the remote; the hub has not fetched it.
	direct := srv.Commit(t, map[string]string{"clusters/staging/apps.yaml": "apps:\n  - name: web\n    version: \"1.6.0\"\n"}, "staging to 1.6.0", "Pat <pat@example.com>")
	res := decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"}), http.StatusOK)
	if srv.Head() != res.Revision {
		t.Fatalf("remote head %s, want the hub's commit %s", srv.Head(), res.Revision)
	}
	c, staging := commitAt(t, srv.Dir(), res.Revision, "clusters/staging/apps.yaml")
	if _, prod := commitAt(t, srv.Dir(), res.Revision, "clusters/prod-eu/apps.yaml"); !strings.Contains(prod, `"1.4.2"`) || !strings.Contains(staging, "1.6.0") {
		t.Errorf("both changes must be present:\n%s\n%s", prod, staging)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != direct || c.Author.Name != "Jane Doe" {
		t.Errorf("the hub's commit has parents %v (want %s), author %s", c.ParentHashes, direct, c.Author.Name)
	}
}

func TestGitServedToItsClusterOnly(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tokA := h.register(t, "prod-eu")
	tokB := h.register(t, "staging")
	clone := func(repo, token string) (*git.Repository, error) {
		opts := &git.CloneOptions{URL: h.url + "/git/" + repo}
		if token != "" {
			opts.Auth = &githttp.BasicAuth{Username: "agent", Password: token}
		}
		return git.CloneContext(context.Background(), memory.NewStorage(), memfs.New(), opts)
	}
	r, err := clone("prod-eu.git", tokA)
	if err != nil {
		t.Fatalf("clone with its own token: %v", err)
	}
	head, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.CommitObject(head.Hash()); err != nil || !strings.HasSuffix(c.Message, apiv1.ViewSourceTrailer+h.git.Head()+"\n") {
		t.Errorf("cloned head %v (%v): want prod-eu's view of %s", c, err, h.git.Head())
	}
	if full, err := clone("prod-eu.git", janeToken); err != nil {
		t.Errorf("clone as an admin: %v", err)
	} else if head, err := full.Head(); err != nil || head.Hash().String() != h.git.Head() {
		t.Errorf("admin clone head %v (%v), want the repository's %s", head, err, h.git.Head())
	}
	if _, err := clone("prod-eu.git", tokB); err == nil {
		t.Error("staging's token cloned prod-eu's repository")
	}
	if _, err := clone("prod-eu.git", ""); err == nil {
		t.Error("cloned without a token")
	}
	r403 := h.do(t, "GET", "/git/prod-eu.git/info/refs?service=git-upload-pack", tokB, nil)
	wantError(t, r403, http.StatusForbidden, apiv1.CodeForbidden, "")
	r401 := h.do(t, "GET", "/git/prod-eu.git/info/refs?service=git-upload-pack", "", nil)
	if r401.status != http.StatusUnauthorized || !strings.HasPrefix(r401.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no token: %d, WWW-Authenticate %q", r401.status, r401.header.Get("WWW-Authenticate"))
	}
	wantError(t, h.do(t, "GET", "/git/..%2Fx.git/info/refs?service=git-upload-pack", tokA, nil), http.StatusBadRequest, apiv1.CodeInvalid, "repo")
}
