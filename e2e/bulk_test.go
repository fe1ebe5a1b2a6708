package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/cmd/outpost/cli"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// bulkFleet are the clusters of TestBulkSetSelector and their labels: six the selector
// matches, and a canary it must leave alone.
var bulkFleet = map[string]string{
	"prod-eu-1": "env: prod\n  region: eu",
	"prod-eu-2": "env: prod\n  region: eu",
	"prod-us-1": "env: prod\n  region: us",
	"prod-us-2": "env: prod\n  region: us",
	"dev-eu":    "env: dev\n  region: eu",
	"dev-us":    "env: dev\n  region: us",
	"canary-eu": "env: prod\n  region: eu\n  canary: \"yes\"",
}

// bulkSelector matches every cluster of bulkFleet but the canary.
const bulkSelector = "env in (prod,dev),!canary"

// TestBulkSetSelector: `outpost set --selector` on a fleet of seven clusters is ONE
// commit that changes the six it matches, and every matched agent (a process each)
// applies it, while the unmatched one stays. The clusters are namespaces of one
// api-mode apiserver, each agent confined to its own (--namespaces), as in the
// benchmarks' fleet; the hub serves its embedded repository to the agents.
func TestBulkSetSelector(t *testing.T) {
	ctx := t.Context()
	files := map[string]string{
		// One app for all: its ConfigMap lands in the namespace named like the cluster.
		"apps/web/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: ${CLUSTER_NAME}\ndata:\n  version: \"${APP_VERSION}\"\n",
	}
	for name := range bulkFleet {
		files["clusters/"+name+"/apps.yaml"] = "apps:\n  # the shop\n  - name: web\n    version: \"1\" # bumped by the fleet\n"
	}
	f := startNSFleet(t, "e2e-bulk", bulkFleet, files)
	cs, api, hubURL := f.cs, f.api, f.hubURL
	s := &suite{t: t}
	for name := range bulkFleet {
		s.waitApp(api, name, "web", 2*time.Minute, synced("1"))
	}

	// The dry run lists the six and commits nothing.
	before := headOf(t, api)
	out, code := runOutpost(t, hubURL, "set", "web", "2", "--selector", bulkSelector, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	var dry apiv1.BulkResult
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("dry run output: %v\n%s", err, out)
	}
	if !dry.DryRun || dry.Committed || len(dry.Changes) != 6 || headOf(t, api) != before || dry.PreviewRevision == "" {
		t.Fatalf("dry run = %+v", dry)
	}
	// As a table, the dry run also shows what each matched cluster would apply,
	// rendered by the hub from the preview commit, and still commits nothing.
	out, code = runOutpost(t, hubURL, "set", "web", "2", "--selector", bulkSelector, "--dry-run")
	if code != 0 || !strings.Contains(out, "rendered, per cluster") || strings.Count(out, "~ changed ConfigMap") != 6 ||
		!strings.Contains(out, "6 clusters, 6 apps: 0 added, 6 changed, 0 removed") || headOf(t, api) != before {
		t.Fatalf("dry run table: exit %d\n%s", code, out)
	}

	start := time.Now()
	out, code = runOutpost(t, hubURL, "set", "web", "2", "--selector", bulkSelector, "--if-match", before, "-o", "json")
	if code != 0 {
		t.Fatalf("bulk set: exit %d\n%s", code, out)
	}
	var res apiv1.BulkResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bulk set output: %v\n%s", err, out)
	}
	if !res.Committed || len(res.Changes) != 6 {
		t.Fatalf("bulk set = %+v", res)
	}
	// One commit: the newest history entry of every matched cluster is that commit,
	// authored by the token's identity, on top of the head the dry run saw.
	for name := range bulkFleet {
		hl, err := api.History(ctx, name, hubapi.HistoryQuery{App: "web", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		matched := name != "canary-eu"
		if got := hl.Entries[0].Commit == res.Revision; got != matched {
			t.Errorf("%s: newest commit %s, bulk commit %s, matched %v", name, hl.Entries[0].Commit, res.Revision, matched)
		}
		if matched && (hl.Entries[0].Author != "Platform Team" || hl.Entries[0].Before != "1" || hl.Entries[0].After != "2") {
			t.Errorf("%s: history entry %+v", name, hl.Entries[0])
		}
	}
	cluster1, err := api.History(ctx, "prod-eu-1", hubapi.HistoryQuery{Limit: 2})
	if err != nil || len(cluster1.Entries) < 1 || !strings.HasPrefix(cluster1.Entries[0].Message, "set web=2 on 6 clusters") {
		t.Errorf("history of prod-eu-1: %+v, %v", cluster1, err)
	}

	// Every matched agent applies it; the canary stays at 1.
	for name := range bulkFleet {
		want := "2"
		if name == "canary-eu" {
			want = "1"
		}
		s.waitApp(api, name, "web", 2*time.Minute, synced(want))
		cm, err := cs.CoreV1().ConfigMaps(name).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || cm.Data["version"] != want {
			t.Errorf("%s: ConfigMap web = %v, %v; want version %s", name, cm.Data, err, want)
		}
	}
	t.Logf("bulk commit → all 6 matched agents reported 2 Synced: %s", time.Since(start).Round(10*time.Millisecond))

	// The old revision is stale for the selection now.
	if out, code := runOutpost(t, hubURL, "rollback", "web", "--selector", bulkSelector, "--if-match", before); code != 4 {
		t.Errorf("stale bulk rollback: exit %d, want 4\n%s", code, out)
	}

	// promote copies what prod-eu-1 runs healthy (2) to the canary, read from the
	// hub's status, and the canary's agent applies it.
	if out, code := runOutpost(t, hubURL, "promote", "web", "--from", "prod-eu-1", "--to", "canary"); code != 0 || !strings.Contains(out, "set web=2 on 1 cluster") {
		t.Fatalf("promote: exit %d\n%s", code, out)
	}
	s.waitApp(api, "canary-eu", "web", 2*time.Minute, synced("2"))
}

// runOutpost runs the CLI against the hub with the admin token; it returns stdout (and
// stderr after it, when it failed) and the exit code.
func runOutpost(t *testing.T, hubURL string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(append(args, "--hub", hubURL, "--token", adminToken))
	err := root.ExecuteContext(t.Context())
	if err != nil {
		return out.String() + errOut.String() + err.Error(), cli.ExitCode(err)
	}
	return out.String(), 0
}

// headOf returns the hub's current Git revision (the matrix's).
func headOf(t *testing.T, api *hubapi.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := api.Matrix(ctx)
	if err != nil {
		t.Fatal(fmt.Errorf("matrix: %w", err))
	}
	return m.Revision
}
