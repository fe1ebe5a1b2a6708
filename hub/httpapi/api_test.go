package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/store"
)

// commitAt reads a commit of the repository in dir through its own go-git handle, as
// another process would, and the content of path in it.
func commitAt(t *testing.T, dir, rev, path string) (*object.Commit, string) {
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
		t.Fatalf("%s at %s: %v", path, rev, err)
	}
	s, err := f.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestSetVersionCommitsWithCallerAsAuthor(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	before := h.git.Head()
	r := h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"})
	res := decode[apiv1.ChangeResult](t, r, http.StatusOK)
	want := apiv1.ChangeResult{Cluster: "prod-eu", App: "web", Version: "1.4.2", PreviousVersion: "1.4.1",
		Changed: true, Message: "set web=1.4.2 on prod-eu", Revision: h.git.Head()}
	if res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	if res.Revision == before {
		t.Fatal("the head did not move")
	}
	if got := r.header.Get("ETag"); got != `"`+res.Revision+`"` {
		t.Errorf("ETag = %s, want the new revision", got)
	}
	c, content := commitAt(t, h.git.Dir(), res.Revision, "clusters/prod-eu/apps.yaml")
	if c.Author.Name != "Jane Doe" || c.Author.Email != "jane@example.com" {
		t.Errorf("author = %s <%s>, want Jane Doe <jane@example.com>", c.Author.Name, c.Author.Email)
	}
	if c.Message != "set web=1.4.2 on prod-eu\n" {
		t.Errorf("message = %q", c.Message)
	}
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != before {
		t.Errorf("parents = %v, want [%s]", c.ParentHashes, before)
	}
	for _, s := range []string{`version: "1.4.2"   # pinned until the CDN fix lands`, "# The public web frontend.", "# Internal API.", "version: 2.0.0"} {
		if !strings.Contains(content, s) {
			t.Errorf("apps.yaml lacks %q:\n%s", s, content)
		}
	}

	// The same request again changes nothing; ci-bot's commit is authored as ci-bot.
	again := decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"}), http.StatusOK)
	if again.Changed || again.Revision != res.Revision {
		t.Errorf("repeated set = %+v, want no commit", again)
	}
	res2 := decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/staging/apps/worker", ciToken, apiv1.SetVersionRequest{Version: "0.9.0"}), http.StatusOK)
	c2, _ := commitAt(t, h.git.Dir(), res2.Revision, "clusters/staging/apps.yaml")
	if c2.Author.Name != "ci-bot" || c2.Author.Email != "ci-bot@outpost.invalid" || res2.PreviousVersion != "" {
		t.Errorf("ci-bot's commit: author %s <%s>, result %+v", c2.Author.Name, c2.Author.Email, res2)
	}

	// The status shows the desired version, with the revision as ETag.
	st := h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil)
	cs := decode[apiv1.ClusterStatus](t, st, http.StatusOK)
	if cs.Revision != h.git.Head() || st.header.Get("ETag") != `"`+h.git.Head()+`"` {
		t.Errorf("status revision %s, ETag %s, head %s", cs.Revision, st.header.Get("ETag"), h.git.Head())
	}
	if len(cs.Apps) != 2 || cs.Apps[0].App != "api" || cs.Apps[1].App != "web" || cs.Apps[1].DesiredVersion != "1.4.2" {
		t.Errorf("status apps = %+v", cs.Apps)
	}
}

func TestUnsetRollbackAndHistory(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"}), http.StatusOK)
	rb := decode[apiv1.ChangeResult](t, h.do(t, "POST", "/api/v1/clusters/prod-eu/apps/web/rollback", ciToken, nil), http.StatusOK)
	if !rb.Changed || rb.Version != "1.4.1" || rb.PreviousVersion != "1.4.2" || rb.Message != "rollback web on prod-eu to 1.4.1" {
		t.Errorf("rollback = %+v", rb)
	}
	un := decode[apiv1.ChangeResult](t, h.do(t, "DELETE", "/api/v1/clusters/prod-eu/apps/api", janeToken, nil), http.StatusOK)
	if !un.Changed || un.Version != "" || un.PreviousVersion != "2.0.0" || un.Message != "unset api on prod-eu" {
		t.Errorf("unset = %+v", un)
	}
	wantError(t, h.do(t, "DELETE", "/api/v1/clusters/prod-eu/apps/api", janeToken, nil), http.StatusNotFound, apiv1.CodeNotFound, "app")

	hist := decode[apiv1.HistoryList](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/history?app=web&limit=10", janeToken, nil), http.StatusOK)
	var got []string
	for _, e := range hist.Entries {
		got = append(got, fmt.Sprintf("%s by %s: %s->%s", e.Message, e.Author, e.Before, e.After))
	}
	want := []string{"rollback web on prod-eu to 1.4.1 by ci-bot: 1.4.2->1.4.1", "set web=1.4.2 on prod-eu by Jane Doe: 1.4.1->1.4.2"}
	if len(got) < 2 || !slices.Equal(got[:2], want) {
		t.Errorf("history = %q, want it to start with %q", got, want)
	}
	all := decode[apiv1.HistoryList](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/history?limit=2", janeToken, nil), http.StatusOK)
	if len(all.Entries) != 2 || all.Entries[0].Message != "unset api on prod-eu" {
		t.Errorf("cluster history = %+v", all.Entries)
	}
}

func TestConcurrentWritersWithSameIfMatch(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	etag := h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil).header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on the status")
	}
	var wg sync.WaitGroup
	results := make([]response, 2)
	for i, v := range []string{"1.5.0", "1.6.0"} {
		wg.Go(func() {
			results[i] = h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: v}, "If-Match", etag)
		})
	}
	wg.Wait()
	statuses := []int{results[0].status, results[1].status}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{http.StatusOK, http.StatusConflict}) {
		t.Fatalf("statuses = %v, want one 200 and one 409: %s / %s", statuses, results[0].body, results[1].body)
	}
	for _, r := range results {
		if r.status == http.StatusConflict {
			wantError(t, r, http.StatusConflict, apiv1.CodeConflict, "If-Match")
		}
	}
	hist := decode[apiv1.HistoryList](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/history?app=web", janeToken, nil), http.StatusOK)
	if len(hist.Entries) != 2 { // the seed commit and one set
		t.Errorf("history = %+v, want exactly one new commit", hist.Entries)
	}
	// A write with the new revision passes.
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken,
		apiv1.SetVersionRequest{Version: "1.7.0"}, "If-Match", `"`+h.git.Head()+`"`), http.StatusOK)
}

// longPoll runs the long-poll of cluster in the background.
func (h *testHub) longPoll(token, cluster, since string) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		r, err := h.try("GET", "/api/v1/agent/desired?cluster="+cluster+"&since="+since, token, nil)
		if err != nil {
			r = response{status: -1, body: []byte(err.Error())}
		}
		out <- pollResult{r: r, at: time.Now()}
	}()
	return out
}

type pollResult struct {
	r  response
	at time.Time
}

// waitForWaiters waits until the notifier holds n long-polls.
func (h *testHub) waitForWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.notifier.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d long-polls held, want %d", h.notifier.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLongPollAnswersOnlyForItsCluster(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	prodToken := h.register(t, "prod-eu")
	head := h.git.Head()

	// Nothing known: the first answer is immediate.
	first := decode[apiv1.DesiredRevision](t, h.do(t, "GET", "/api/v1/agent/desired?cluster=prod-eu&since=", prodToken, nil), http.StatusOK)
	if !first.Changed || first.Revision != head {
		t.Fatalf("first long-poll = %+v, want changed at %s", first, head)
	}

	poll := h.longPoll(prodToken, "prod-eu", first.Revision)
	h.waitForWaiters(t, 1)
	// A commit touching only staging does not answer prod-eu's long-poll.
	decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/staging/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.6.0"}), http.StatusOK)
	select {
	case p := <-poll:
		t.Fatalf("the long-poll answered a commit to another cluster: %d %s", p.r.status, p.r.body)
	case <-time.After(500 * time.Millisecond):
	}

	start := time.Now()
	res := decode[apiv1.ChangeResult](t, h.do(t, "PUT", "/api/v1/clusters/prod-eu/apps/web", janeToken, apiv1.SetVersionRequest{Version: "1.4.2"}), http.StatusOK)
	answered := time.Now()
	select {
	case p := <-poll:
		ans := decode[apiv1.DesiredRevision](t, p.r, http.StatusOK)
		if !ans.Changed || ans.Revision != res.Revision {
			t.Errorf("long-poll = %+v, want changed at %s", ans, res.Revision)
		}
		t.Logf("long-poll latency: %v after the PUT was sent, %v after its answer (commit included)",
			p.at.Sub(start).Round(time.Microsecond), p.at.Sub(answered).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not answer a commit to its cluster within 10 s (hold is 30 s)")
	}
}

func TestReportAndStatus(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	rep := report("prod-eu", "web", "1.4.1", 1, apiv1.PhaseSynced)
	rep.Drift = []apiv1.Drift{{App: "web", Object: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "web", Name: "web"},
		Fields:     []apiv1.DriftField{{Path: "spec.replicas", Desired: []byte("3"), Live: []byte("5"), Manager: "kubectl", Operation: "Update"}},
		ObservedAt: rep.SentAt}}
	got := decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, rep), http.StatusOK)
	if !slices.Equal(got.Stored, []string{"web"}) || len(got.Stale) != 0 {
		t.Errorf("report = %+v", got)
	}
	again := decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, rep), http.StatusOK)
	if len(again.Stored) != 0 || !slices.Equal(again.Stale, []string{"web"}) {
		t.Errorf("repeated report = %+v, want stale", again)
	}
	cs := decode[apiv1.ClusterStatus](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil), http.StatusOK)
	web := cs.Apps[slices.IndexFunc(cs.Apps, func(a apiv1.AppState) bool { return a.App == "web" })]
	if web.Phase != apiv1.PhaseSynced || web.DesiredVersion != "1.4.1" || len(web.Drift) != 1 || web.Drift[0].Fields[0].Manager != "kubectl" || web.ReceivedAt.IsZero() {
		t.Errorf("web = %+v", web)
	}
	if cs.Cluster.Summary != (apiv1.ClusterSummary{Apps: 1, Synced: 1, Healthy: 1, Drifted: 1}) || cs.Cluster.Agent.ID != "agent-prod-eu" {
		t.Errorf("cluster = %+v", cs.Cluster)
	}
	list := decode[apiv1.ClusterList](t, h.do(t, "GET", "/api/v1/clusters", janeToken, nil), http.StatusOK)
	if len(list.Clusters) != 1 || list.Clusters[0].Summary.Drifted != 1 {
		t.Errorf("list = %+v", list)
	}
	one := decode[apiv1.Cluster](t, h.do(t, "GET", "/api/v1/clusters/prod-eu", janeToken, nil), http.StatusOK)
	if one.Summary != cs.Cluster.Summary || one.LastReportAt.IsZero() {
		t.Errorf("cluster = %+v", one)
	}
	m := decode[apiv1.Matrix](t, h.do(t, "GET", "/api/v1/matrix", janeToken, nil), http.StatusOK)
	if !slices.Equal(m.Apps, []string{"api", "web"}) || len(m.Clusters) != 2 {
		t.Fatalf("matrix = %+v", m)
	}
	if cell := m.Clusters[0].Apps["web"]; m.Clusters[0].Cluster != "prod-eu" || cell.DesiredVersion != "1.4.1" || cell.Phase != apiv1.PhaseSynced || cell.Drifted != 1 {
		t.Errorf("matrix prod-eu/web = %+v", cell)
	}
	if cell := m.Clusters[1].Apps["web"]; m.Clusters[1].Cluster != "staging" || cell.DesiredVersion != "1.5.0" || cell.Phase != "" {
		t.Errorf("matrix staging/web = %+v", cell)
	}
	ev := decode[apiv1.EventList](t, h.do(t, "GET", "/api/v1/events?cluster=prod-eu&type=drift", janeToken, nil), http.StatusOK)
	if len(ev.Events) != 1 || ev.Events[0].App != "web" {
		t.Errorf("events = %+v", ev)
	}
}

// TestSuccessiveReportsAreEachStored: every report of a newer generation is
// stored, and the status shows the last one. (What a report costs is measured by
// the hub-capacity benchmark, bench/internal/benchrun/hubcap.go, "report round trip".)
func TestSuccessiveReportsAreEachStored(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	const n = 20
	for i := 1; i <= n; i++ {
		rep := report("prod-eu", "web", fmt.Sprintf("1.4.%d", i), int64(i), apiv1.PhaseSynced)
		got := decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, rep), http.StatusOK)
		if !slices.Equal(got.Stored, []string{"web"}) {
			t.Fatalf("report %d: %+v, want web stored", i, got)
		}
	}
	cs := decode[apiv1.ClusterStatus](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil), http.StatusOK)
	i := slices.IndexFunc(cs.Apps, func(a apiv1.AppState) bool { return a.App == "web" })
	if i < 0 || cs.Apps[i].Version != fmt.Sprintf("1.4.%d", n) || cs.Apps[i].Generation.Sequence != n {
		t.Errorf("status apps = %+v, want web at 1.4.%d, sequence %d", cs.Apps, n, n)
	}
}

func TestRegisterAndDelete(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	before := h.git.Head()
	r := h.do(t, "POST", "/api/v1/clusters", janeToken, apiv1.RegisterClusterRequest{Name: "edge-1", Labels: map[string]string{"env": "edge"}})
	out := decode[apiv1.RegisterClusterResponse](t, r, http.StatusCreated)
	if out.Cluster.Name != "edge-1" || out.Cluster.Labels["env"] != "edge" || out.Cluster.CreatedAt.IsZero() || r.header.Get("Location") != "/api/v1/clusters/edge-1" {
		t.Errorf("register = %+v, Location %s", out, r.header.Get("Location"))
	}
	c, content := commitAt(t, h.git.Dir(), h.git.Head(), "clusters/edge-1/cluster.yaml")
	if h.git.Head() == before || c.Message != "add cluster edge-1\n" || c.Author.Name != "Jane Doe" || !strings.Contains(content, "env: edge") {
		t.Errorf("commit %q by %s:\n%s", c.Message, c.Author.Name, content)
	}
	// Only the hash is stored.
	sc, err := h.store.GetCluster(context.Background(), "edge-1")
	if err != nil || sc.TokenHash != store.HashToken(out.Token) {
		t.Errorf("stored cluster %+v, %v", sc, err)
	}
	wantError(t, h.do(t, "POST", "/api/v1/clusters", janeToken, apiv1.RegisterClusterRequest{Name: "edge-1"}), http.StatusConflict, apiv1.CodeConflict, "name")

	// The token works, until the cluster is deleted.
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, out.Token, apiv1.StatusReport{Cluster: "edge-1", Agent: apiv1.AgentInfo{ID: "a"}, SentAt: time.Now()}), http.StatusOK)
	if r := h.do(t, "DELETE", "/api/v1/clusters/edge-1", janeToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	c, _ = commitAt(t, h.git.Dir(), h.git.Head(), "clusters/prod-eu/apps.yaml")
	if c.Message != "remove cluster edge-1\n" {
		t.Errorf("last commit %q", c.Message)
	}
	wantError(t, h.do(t, "POST", apiv1.ReportPath, out.Token, apiv1.StatusReport{Cluster: "edge-1", Agent: apiv1.AgentInfo{ID: "a"}, SentAt: time.Now()}), http.StatusUnauthorized, apiv1.CodeUnauthorized, "")
	wantError(t, h.do(t, "DELETE", "/api/v1/clusters/edge-1", janeToken, nil), http.StatusNotFound, apiv1.CodeNotFound, "cluster")
	wantError(t, h.do(t, "GET", "/api/v1/clusters/edge-1", janeToken, nil), http.StatusNotFound, apiv1.CodeNotFound, "cluster")
}

// TestAttackTokenRotationTouchesNoGit: rotating an agent token makes no commit (the
// old remove-and-add emptied the cluster: security review H3); the new token works at
// once, the previous one during its grace period only, and a bad grace is refused.
func TestAttackTokenRotationTouchesNoGit(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	old := h.register(t, "prod-eu")
	head := h.git.Head()
	send := func(tok string) response {
		return h.do(t, "POST", apiv1.ReportPath, tok, apiv1.StatusReport{Cluster: "prod-eu", Agent: apiv1.AgentInfo{ID: "a"}, SentAt: time.Now()})
	}

	rot := decode[apiv1.RotateTokenResponse](t, h.do(t, "POST", "/api/v1/clusters/prod-eu/token", janeToken, apiv1.RotateTokenRequest{GraceSeconds: 2}), http.StatusOK)
	if rot.Cluster != "prod-eu" || !strings.HasPrefix(rot.Token, store.TokenPrefix) || rot.Token == old || rot.PreviousValidUntil == nil {
		t.Fatalf("rotate = %+v", rot)
	}
	if h.git.Head() != head {
		t.Errorf("rotation moved the Git head from %s to %s", head, h.git.Head())
	}
	decode[apiv1.ReportResponse](t, send(rot.Token), http.StatusOK)
	decode[apiv1.ReportResponse](t, send(old), http.StatusOK) // in its grace period
	deadline := time.Now().Add(10 * time.Second)
	for send(old).status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the previous token still works past its grace period")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Without a body: no grace at all.
	again := decode[apiv1.RotateTokenResponse](t, h.do(t, "POST", "/api/v1/clusters/prod-eu/token", janeToken, nil), http.StatusOK)
	if again.PreviousValidUntil != nil {
		t.Errorf("rotate without grace = %+v", again)
	}
	wantError(t, send(rot.Token), http.StatusUnauthorized, apiv1.CodeUnauthorized, "")
	decode[apiv1.ReportResponse](t, send(again.Token), http.StatusOK)

	wantError(t, h.do(t, "POST", "/api/v1/clusters/prod-eu/token", janeToken, apiv1.RotateTokenRequest{GraceSeconds: -1}), http.StatusBadRequest, apiv1.CodeInvalid, "graceSeconds")
	wantError(t, h.do(t, "POST", "/api/v1/clusters/prod-eu/token", janeToken, `{"graceSeconds": 86401}`), http.StatusBadRequest, apiv1.CodeInvalid, "graceSeconds")
	wantError(t, h.do(t, "POST", "/api/v1/clusters/nope/token", janeToken, nil), http.StatusNotFound, apiv1.CodeNotFound, "cluster")
	wantError(t, h.do(t, "POST", "/api/v1/clusters/prod-eu/token", again.Token, nil), http.StatusForbidden, apiv1.CodeForbidden, "")
	if h.git.Head() != head {
		t.Errorf("rotations moved the Git head")
	}
}

// TestAttackFutureEpochCannotFreezeStatus: a report whose generation epoch lies far
// in the future (a leaked token, an agent with a wrong clock) is refused naming the
// field, so the real agent's later reports keep being stored (security review M3).
func TestAttackFutureEpochCannotFreezeStatus(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	bogus := report("prod-eu", "web", "6.6.6", 1, apiv1.PhaseSynced)
	bogus.Apps[0].Generation.Epoch = 9_000_000_000_000_000
	wantError(t, h.do(t, "POST", apiv1.ReportPath, tok, bogus), http.StatusBadRequest, apiv1.CodeInvalid, "apps[0].generation.epoch")
	// Just inside the skew is accepted (clocks differ a little).
	near := report("prod-eu", "web", "1.4.0", 1, apiv1.PhaseSynced)
	near.Apps[0].Generation.Epoch = time.Now().Add(apiv1.MaxEpochSkew - time.Minute).UnixMilli()
	decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, near), http.StatusOK)

	real := report("prod-eu", "web", "1.4.1", 1, apiv1.PhaseFailed)
	real.Apps[0].Generation.Epoch = time.Now().Add(apiv1.MaxEpochSkew).UnixMilli()
	got := decode[apiv1.ReportResponse](t, h.do(t, "POST", apiv1.ReportPath, tok, real), http.StatusOK)
	if !slices.Equal(got.Stored, []string{"web"}) {
		t.Fatalf("a real report after the bogus one: %+v, want stored", got)
	}
	cs := decode[apiv1.ClusterStatus](t, h.do(t, "GET", "/api/v1/clusters/prod-eu/status", janeToken, nil), http.StatusOK)
	web := cs.Apps[slices.IndexFunc(cs.Apps, func(a apiv1.AppState) bool { return a.App == "web" })]
	if web.Phase != apiv1.PhaseFailed || web.Version != "1.4.1" {
		t.Errorf("web = %s %s, want the real agent's Failed 1.4.1", web.Phase, web.Version)
	}
}

// TestAttackRegisterExistingClusterKeepsItsApps: registering a name whose directory
// is in Git already creates only its token: no commit, its apps.yaml untouched (the
// old remove-and-add committed apps: [] over it; security review H3).
func TestAttackRegisterExistingClusterKeepsItsApps(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	head := h.git.Head()
	_, before := commitAt(t, h.git.Dir(), head, "clusters/staging/apps.yaml")
	h.register(t, "staging")
	if h.git.Head() != head {
		t.Errorf("registering a cluster Git has moved the head")
	}
	if _, after := commitAt(t, h.git.Dir(), h.git.Head(), "clusters/staging/apps.yaml"); after != before || !strings.Contains(after, "web") {
		t.Errorf("apps.yaml after registering:\n%s\nwant unchanged:\n%s", after, before)
	}
}
