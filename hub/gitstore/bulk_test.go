package gitstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bulkSeed is a fleet of six clusters with labels, each listing web (with a
// comment to keep) at its own version; the last one lists only api.
var bulkSeed = map[string]struct{ labels, apps string }{
	"prod-eu-1": {"env: prod\n  region: eu", "apps:\n  # the shop\n  - name: web\n    version: \"1.0\" # pinned\n"},
	"prod-eu-2": {"env: prod\n  region: eu", "apps:\n  - name: web\n    version: \"1.1\"\n"},
	"prod-us-1": {"env: prod\n  region: us", "apps:\n  - name: web\n    version: \"1.2\"\n"},
	"canary-eu": {"env: prod\n  region: eu\n  canary: \"true\"", "apps:\n  - name: web\n    version: \"1.3\"\n"},
	"dev-eu":    {"env: dev\n  region: eu", "apps:\n  - name: web\n    version: \"1.4\"\n    vars: {replicas: \"5\", tier: gold}\n"},
	"lab":       {"env: lab", "apps:\n  - name: api\n    version: \"0.1\"\n"},
}

// openBulkSeed opens an embedded store seeded with bulkSeed.
func openBulkSeed(t *testing.T) *Store {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"apps/web/app.yaml":        "namespace: web\n",
		"apps/web/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
		"apps/api/app.yaml":        "namespace: api\n",
		"apps/api/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n",
	}
	for c, f := range bulkSeed {
		files["clusters/"+c+"/cluster.yaml"] = "labels:\n  " + f.labels + "\n"
		files["clusters/"+c+"/apps.yaml"] = f.apps
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
	s, err := Open(context.Background(), Config{Dir: filepath.Join(t.TempDir(), "repo.git"), Seed: dir}, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// versions returns web's version on every cluster at the head ("" when not listed).
func versions(t *testing.T, s *Store, app string) map[string]string {
	t.Helper()
	sn, err := s.Snapshot(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range sn.Clusters {
		if a := c.App(app); a != nil {
			out[c.Name] = a.Version
		} else {
			out[c.Name] = ""
		}
	}
	return out
}

func TestBulkSetSelectorOneCommit(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	before := s.Head()
	req := BulkRequest{Action: BulkSet, App: "web", Version: "2.0", Selector: "env=prod,region in (eu),!canary", Clusters: []string{"dev-eu"}}

	dry := req
	dry.DryRun = true
	plan, err := s.Bulk(ctx, dry, jane)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	wantChanges := []ClusterChange{
		{Cluster: "dev-eu", Before: "1.4", After: "2.0", Changed: true},
		{Cluster: "prod-eu-1", Before: "1.0", After: "2.0", Changed: true},
		{Cluster: "prod-eu-2", Before: "1.1", After: "2.0", Changed: true},
	}
	if !plan.DryRun || plan.Committed || s.Head() != before || branchHead(t, s.Dir()) != before {
		t.Errorf("dry run committed: %+v, head %s", plan, s.Head())
	}
	if !equalChanges(plan.Changes, wantChanges) {
		t.Errorf("dry run changes = %+v, want %+v", plan.Changes, wantChanges)
	}
	// The dry run's preview commit is the write it would make, on no branch: its
	// tree holds the edit (for GET /api/v1/diff), the branch does not.
	if plan.Preview == "" || plan.Preview == before {
		t.Fatalf("dry run preview %q", plan.Preview)
	}
	if sn, err := s.Snapshot(ctx, plan.Preview); err != nil || sn.Cluster("prod-eu-2") == nil || sn.Cluster("prod-eu-2").App("web").Version != "2.0" {
		t.Fatalf("preview snapshot: %v", err)
	}

	res, err := s.Bulk(ctx, req, jane)
	if err != nil {
		t.Fatalf("Bulk: %v", err)
	}
	if !res.Committed || res.Attempts != 1 || res.Previous != before || s.Head() != res.Revision {
		t.Errorf("result = %+v", res)
	}
	if !equalChanges(res.Changes, wantChanges) {
		t.Errorf("changes = %+v, want %+v", res.Changes, wantChanges)
	}
	content, c := fileAt(t, s.Dir(), res.Revision, "clusters/prod-eu-1/apps.yaml")
	if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != before {
		t.Errorf("not one commit on top of %s: parents %v", before, c.ParentHashes)
	}
	if c.Author.Name != jane.Name || c.Author.Email != jane.Email {
		t.Errorf("author = %s <%s>", c.Author.Name, c.Author.Email)
	}
	if want := "apps:\n  # the shop\n  - name: web\n    version: \"2.0\" # pinned\n"; content != want {
		t.Errorf("prod-eu-1 apps.yaml = %q, want %q (comments kept)", content, want)
	}
	for _, want := range []string{"set web=2.0 on 3 clusters\n", "Selector: env=prod,region in (eu),!canary", "prod-eu-2: 1.1 -> 2.0"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q lacks %q", c.Message, want)
		}
	}
	got := versions(t, s, "web")
	want := map[string]string{"prod-eu-1": "2.0", "prod-eu-2": "2.0", "dev-eu": "2.0", "prod-us-1": "1.2", "canary-eu": "1.3", "lab": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("web on %s = %q, want %q", k, got[k], v)
		}
	}

	// The same again changes nothing and commits nothing.
	again, err := s.Bulk(ctx, req, jane)
	if err != nil || again.Committed || again.Revision != res.Revision {
		t.Errorf("again: %+v, %v", again, err)
	}

	// A bulk rollback returns each cluster to its own previous version, in one commit.
	rb, err := s.Bulk(ctx, BulkRequest{Action: BulkRollback, App: "web", Selector: "region=eu,env in (prod,dev),!canary"}, bob)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	got = versions(t, s, "web")
	for k, v := range map[string]string{"prod-eu-1": "1.0", "prod-eu-2": "1.1", "dev-eu": "1.4"} {
		if got[k] != v {
			t.Errorf("after rollback, web on %s = %q, want %q", k, got[k], v)
		}
	}
	if _, c := fileAt(t, s.Dir(), rb.Revision, "clusters/dev-eu/apps.yaml"); c.ParentHashes[0].String() != res.Revision {
		t.Errorf("rollback is not one commit on the set")
	}

	// A bulk unset removes the app everywhere selected.
	if _, err := s.Bulk(ctx, BulkRequest{Action: BulkUnset, App: "web", Clusters: []string{"prod-us-1", "canary-eu"}}, jane); err != nil {
		t.Fatalf("unset: %v", err)
	}
	if got := versions(t, s, "web"); got["prod-us-1"] != "" || got["canary-eu"] != "" || got["prod-eu-1"] != "1.0" {
		t.Errorf("after unset: %v", got)
	}
}

func equalChanges(a, b []ClusterChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBulkAllOrNothing: one refused cluster refuses the whole write, naming it.
func TestBulkAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	head := s.Head()
	// lab does not list web: the unset of web on env in (dev,lab) is refused as a whole.
	_, err := s.Bulk(ctx, BulkRequest{Action: BulkUnset, App: "web", Selector: "env in (dev,lab)"}, jane)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Cluster != "lab" || !strings.Contains(err.Error(), "clusters/lab/apps.yaml") {
		t.Fatalf("err = %v, want a NotFoundError naming lab and its apps.yaml", err)
	}
	// No earlier version of web on any cluster: the rollback is refused naming the first.
	_, err = s.Bulk(ctx, BulkRequest{Action: BulkRollback, App: "web", Clusters: []string{"prod-us-1", "dev-eu"}}, jane)
	if !errors.As(err, &nf) || nf.Kind != KindPreviousVersion || nf.Cluster != "dev-eu" {
		t.Fatalf("rollback err = %v, want no previous version on dev-eu", err)
	}
	if s.Head() != head || branchHead(t, s.Dir()) != head {
		t.Errorf("a refused bulk write committed: head %s, want %s", s.Head(), head)
	}
	if got := versions(t, s, "web"); got["dev-eu"] != "1.4" {
		t.Errorf("dev-eu changed: %v", got)
	}
}

func TestBulkErrors(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	head := s.Head()
	many := make([]string, MaxBulkClusters+1)
	for i := range many {
		many[i] = fleetName(i)
	}
	tests := map[string]struct {
		req   BulkRequest
		field Input  // a ValidationError of this field
		kind  Kind   // else a NotFoundError of this kind
		name  string // naming this
	}{
		"bad selector":           {req: BulkRequest{Action: BulkSet, App: "web", Version: "2", Selector: "env=="}, field: InputSelector},
		"bad selector operator":  {req: BulkRequest{Action: BulkSet, App: "web", Version: "2", Selector: "env notin prod"}, field: InputSelector},
		"no selector, no list":   {req: BulkRequest{Action: BulkSet, App: "web", Version: "2"}, field: InputSelector},
		"selector matching none": {req: BulkRequest{Action: BulkSet, App: "web", Version: "2", Selector: "env=nowhere"}, field: InputSelector, name: "env=nowhere"},
		"set without version":    {req: BulkRequest{Action: BulkSet, App: "web", Selector: "env=prod"}, field: InputVersion},
		"unset with version":     {req: BulkRequest{Action: BulkUnset, App: "web", Version: "2", Selector: "env=prod"}, field: InputVersion},
		"unknown action":         {req: BulkRequest{Action: "bump", App: "web", Selector: "env=prod"}, field: InputAction, name: "bump"},
		"bad app":                {req: BulkRequest{Action: BulkUnset, App: "Web", Selector: "env=prod"}, field: InputApp},
		"bad cluster name":       {req: BulkRequest{Action: BulkUnset, App: "web", Clusters: []string{"../x"}}, field: InputClusters},
		"cluster twice":          {req: BulkRequest{Action: BulkUnset, App: "web", Clusters: []string{"lab", "lab"}}, field: InputClusters, name: "lab"},
		"too many clusters":      {req: BulkRequest{Action: BulkUnset, App: "web", Clusters: many}, field: InputClusters, name: "limit"},
		"bad if-match":           {req: BulkRequest{Action: BulkUnset, App: "web", Selector: "env=prod", IfMatch: "abc"}, field: InputIfMatch},
		"unknown cluster":        {req: BulkRequest{Action: BulkSet, App: "web", Version: "2", Clusters: []string{"dev-eu", "nowhere"}}, kind: KindCluster, name: "nowhere"},
		"unknown app":            {req: BulkRequest{Action: BulkSet, App: "nope", Version: "2", Selector: "env=prod"}, kind: KindApp, name: "nope"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := s.Bulk(ctx, tc.req, jane)
			var ve *ValidationError
			var nf *NotFoundError
			switch {
			case tc.field != "":
				if !errors.As(err, &ve) || ve.Field != tc.field {
					t.Fatalf("err = %v, want a ValidationError of %s", err, tc.field)
				}
			default:
				if !errors.As(err, &nf) || nf.Kind != tc.kind {
					t.Fatalf("err = %v, want a NotFoundError of %s", err, tc.kind)
				}
			}
			if !strings.Contains(err.Error(), tc.name) {
				t.Errorf("err %q does not name %q", err, tc.name)
			}
		})
	}
	if s.Head() != head {
		t.Errorf("a refused write committed")
	}
}

// TestBulkIfMatch: If-Match guards the selection and every selected apps.yaml,
// not the clusters outside it.
func TestBulkIfMatch(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	r0 := s.Head()
	req := BulkRequest{Action: BulkSet, App: "web", Version: "3.0", Selector: "env=prod,region=eu", IfMatch: r0}

	// A change outside the selection does not make r0 stale.
	mustSet(t, s, "prod-us-1", "web", "1.9")
	dry := req
	dry.DryRun = true
	if _, err := s.Bulk(ctx, dry, jane); err != nil {
		t.Fatalf("change outside the selection: %v", err)
	}
	// A change of a selected cluster does.
	mustSet(t, s, "canary-eu", "web", "1.8")
	head := s.Head()
	if _, err := s.Bulk(ctx, req, jane); !errors.Is(err, ErrStaleRevision) || !strings.Contains(err.Error(), "clusters/canary-eu/apps.yaml") {
		t.Fatalf("selected cluster changed: err = %v, want stale naming canary-eu", err)
	}
	// So does a cluster joining the selection by a label change.
	req.IfMatch = head
	if _, err := s.AddCluster(ctx, "prod-eu-3", map[string]string{"env": "prod", "region": "eu"}, jane, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bulk(ctx, req, jane); !errors.Is(err, ErrStaleRevision) || !strings.Contains(err.Error(), "prod-eu-3") {
		t.Fatalf("selection changed: err = %v, want stale naming prod-eu-3", err)
	}
	if got := versions(t, s, "web"); got["prod-eu-1"] != "1.0" {
		t.Errorf("a stale write committed: %v", got)
	}
	// At the current head it goes through, new cluster included.
	req.IfMatch = s.Head()
	res, err := s.Bulk(ctx, req, jane)
	if err != nil || len(res.Changes) != 4 {
		t.Fatalf("current if-match: %+v, %v", res, err)
	}
}

// TestBulkVarsFrom: a bulk set can copy the app's vars from one cluster, read at the
// same revision; the copy keeps the target files' comments.
func TestBulkVarsFrom(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	res, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "1.4", Clusters: []string{"prod-eu-1", "prod-eu-2"}, VarsFrom: "dev-eu"}, jane)
	if err != nil {
		t.Fatalf("Bulk: %v", err)
	}
	sn, err := s.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"prod-eu-1", "prod-eu-2"} {
		a := sn.Cluster(c).App("web")
		if a.Version != "1.4" || a.Vars["replicas"] != "5" || a.Vars["tier"] != "gold" || len(a.Vars) != 2 {
			t.Errorf("%s: web = %+v, want 1.4 with dev-eu's vars", c, a)
		}
	}
	content, c := fileAt(t, s.Dir(), res.Revision, "clusters/prod-eu-1/apps.yaml")
	if !strings.Contains(content, "# the shop") || !strings.Contains(content, "# pinned") {
		t.Errorf("comments lost:\n%s", content)
	}
	if !strings.Contains(c.Message, "Vars-From: dev-eu") {
		t.Errorf("message %q does not name the vars' source", c.Message)
	}
	// The same again: nothing to change.
	again, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "1.4", Clusters: []string{"prod-eu-1"}, VarsFrom: "dev-eu"}, jane)
	if err != nil || again.Committed {
		t.Errorf("again: %+v, %v", again, err)
	}
	// Copying from a cluster without vars removes them.
	if _, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "1.4", Clusters: []string{"prod-eu-2"}, VarsFrom: "prod-us-1"}, jane); err != nil {
		t.Fatal(err)
	}
	if sn, _ := s.Snapshot(ctx, ""); len(sn.Cluster("prod-eu-2").App("web").Vars) != 0 {
		t.Errorf("vars not removed: %+v", sn.Cluster("prod-eu-2").App("web"))
	}
	head := s.Head()
	var nf *NotFoundError
	if _, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "9", Selector: "env=prod", VarsFrom: "lab"}, jane); !errors.As(err, &nf) || nf.Cluster != "lab" {
		t.Errorf("vars from a cluster without the app: %v", err)
	}
	var ve *ValidationError
	if _, err := s.Bulk(ctx, BulkRequest{Action: BulkUnset, App: "web", Selector: "env=prod", VarsFrom: "dev-eu"}, jane); !errors.As(err, &ve) || ve.Field != InputVarsFrom {
		t.Errorf("vars with unset: %v", err)
	}
	if s.Head() != head {
		t.Errorf("a refused write committed")
	}
}

// A selector is matched against each cluster's labels as of the write's base: labels
// are cached by cluster.yaml's content, so an edit of a cluster's labels (a new blob)
// is seen by the next write, and clusters with the same file share one entry.
func TestBulkSelectorSeesLabelEdits(t *testing.T) {
	ctx := context.Background()
	s := openBulkSeed(t)
	selected := func(selector string) []string {
		t.Helper()
		res, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "9.9", Selector: selector, DryRun: true}, jane)
		if err != nil {
			t.Fatalf("%s: %v", selector, err)
		}
		var out []string
		for _, c := range res.Changes {
			out = append(out, c.Cluster)
		}
		return out
	}
	if got := strings.Join(selected("env=dev"), ","); got != "dev-eu" {
		t.Fatalf("env=dev before the edit selects %s", got)
	}
	if got := strings.Join(selected("region=eu,env=prod"), ","); got != "canary-eu,prod-eu-1,prod-eu-2" {
		t.Fatalf("region=eu,env=prod selects %s", got)
	}
	// lab moves to dev; prod-eu-2 gets a file of its own.
	commitFiles(t, s, map[string]string{
		"clusters/lab/cluster.yaml":       "labels:\n  env: dev\n",
		"clusters/prod-eu-2/cluster.yaml": "labels:\n  env: prod\n  region: us\n",
	})
	if got := strings.Join(selected("env=dev"), ","); got != "dev-eu,lab" {
		t.Errorf("env=dev after lab's labels changed selects %s, want dev-eu,lab", got)
	}
	if got := strings.Join(selected("region=eu,env=prod"), ","); got != "canary-eu,prod-eu-1" {
		t.Errorf("region=eu,env=prod after prod-eu-2 moved selects %s, want canary-eu,prod-eu-1", got)
	}
	// A cluster.yaml that stops parsing is refused again, not matched from the cache.
	commitFiles(t, s, map[string]string{"clusters/lab/cluster.yaml": "labels: [not, a, map]\n"})
	var ce *ContentError
	if _, err := s.Bulk(ctx, BulkRequest{Action: BulkSet, App: "web", Version: "9.9", Selector: "env=dev", DryRun: true}, jane); !errors.As(err, &ce) || ce.File != "clusters/lab/cluster.yaml" {
		t.Errorf("a cluster.yaml that does not parse: %v, want a *ContentError naming it", err)
	}
}
