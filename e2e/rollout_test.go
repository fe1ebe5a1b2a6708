package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// rolloutFleet is six clusters in three waves.
var rolloutFleet = map[string]string{
	"dev-1": "env: dev", "dev-2": "env: dev",
	"eu-1": "env: prod\n  region: eu", "eu-2": "env: prod\n  region: eu",
	"us-1": "env: prod\n  region: us", "us-2": "env: prod\n  region: us",
}

// rolloutSoak is every wave's soak.
const rolloutSoak = 3 * time.Second

// rolloutPolicy moves web through dev, eu and us.
var rolloutPolicy = fmt.Sprintf(`waves:
  - name: dev
    selector: env=dev
    soak: %[1]s
  - name: eu
    selector: region=eu
    soak: %[1]s
  - name: us
    selector: region=us
    soak: %[1]s
progressDeadline: 30s
`, rolloutSoak)

// TestRollout: on six clusters (agents as processes),
//   - a three-wave rollout of web 1 -> 2 completes, each wave starting only after
//     every cluster of the previous one stayed Synced and Current for the soak, with
//     one commit per wave, and the hub killed (SIGKILL) in the middle of the run
//     resumes it without skipping or repeating a wave;
//   - a rollout of web 2 -> 3 whose new version a cluster of wave 2 rejects (an
//     admission policy there refuses it: the sync fails) is rolled back by itself:
//     every touched cluster is back at 2 and healthy, by one rollback commit, and
//     wave 3 was never written.
func TestRollout(t *testing.T) {
	ctx := t.Context()
	files := map[string]string{
		"apps/web/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: ${CLUSTER_NAME}\ndata:\n  version: \"${APP_VERSION}\"\n",
		"rollouts/web.yaml":       rolloutPolicy,
	}
	for c := range rolloutFleet {
		files["clusters/"+c+"/apps.yaml"] = "apps:\n  - name: web\n    version: \"1\"\n"
	}
	f := startNSFleet(t, "e2e-rollout", rolloutFleet, files, "--rollout-interval=200ms")
	s := &suite{t: t}
	for c := range rolloutFleet {
		s.waitApp(f.api, c, "web", 2*time.Minute, synced("1"))
	}

	// 1 -> 2, with the hub killed during wave eu.
	out, code := runOutpost(t, f.hubURL, "rollout", "start", "web", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("rollout start: exit %d\n%s", code, out)
	}
	var run apiv1.Rollout
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("rollout start output: %v\n%s", err, out)
	}
	waitRun(t, f.api, run.ID, 2*time.Minute, "wave eu written", func(r *apiv1.Rollout) bool {
		return r.Wave == 1 && !r.Waves[1].StartedAt.IsZero()
	})
	f.killHub()
	t.Logf("hub killed (SIGKILL) during wave eu of %s", run.ID)
	f.startHub()
	done := waitRun(t, f.api, run.ID, 3*time.Minute, "Succeeded", func(r *apiv1.Rollout) bool { return !r.State.Active() })
	if done.State != apiv1.RolloutSucceeded {
		t.Fatalf("run %s: %s (%s)", run.ID, done.State, done.Reason)
	}
	for i := 1; i < len(done.Waves); i++ {
		started := done.Waves[i].StartedAt
		for _, c := range done.Clusters {
			if c.Wave != i-1 {
				continue
			}
			if soakEnd := c.FirstHealthyAt.Add(rolloutSoak); started.Before(soakEnd) {
				t.Errorf("wave %s started %s, before %s's soak ended (%s)", done.Waves[i].Name, started.Format(time.StampMilli), c.Cluster, soakEnd.Format(time.StampMilli))
			}
		}
		t.Logf("wave %s: started %s; wave %s done %s", done.Waves[i].Name, started.Format(time.StampMilli),
			done.Waves[i-1].Name, done.Waves[i-1].DoneAt.Format(time.StampMilli))
	}
	if commits := runCommits(t, f, run.ID); len(commits) != 3 {
		t.Errorf("run %s made %d commits, want one per wave: %v", run.ID, len(commits), commits)
	}
	for c := range rolloutFleet {
		s.waitApp(f.api, c, "web", time.Minute, synced("2"))
	}
	out, code = runOutpost(t, f.hubURL, "rollout", "status", "web")
	if code != 0 || !strings.Contains(out, "Succeeded") || strings.Count(out, "Verified") != 6 {
		t.Errorf("rollout status: exit %d\n%s", code, out)
	}

	// 2 -> 3, refused on eu-2 by an admission policy: the run rolls back by itself.
	rejectVersion(ctx, t, f, "eu-2", "3")
	out, code = runOutpost(t, f.hubURL, "rollout", "start", "web", "3", "-o", "json")
	if code != 0 {
		t.Fatalf("rollout start: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatal(err)
	}
	// While it runs, a manual set on a held cluster is refused, naming the run.
	if out, code := runOutpost(t, f.hubURL, "set", "web", "9", "--cluster", "us-1"); code == 0 || !strings.Contains(out, run.ID) {
		t.Errorf("manual set during the run: exit %d\n%s", code, out)
	}
	done = waitRun(t, f.api, run.ID, 3*time.Minute, "RolledBack", func(r *apiv1.Rollout) bool { return !r.State.Active() })
	if done.State != apiv1.RolloutRolledBack {
		t.Fatalf("run %s: %s (%s)", run.ID, done.State, done.Reason)
	}
	if !strings.Contains(done.Reason, "wave eu") {
		t.Errorf("reason %q does not name wave eu", done.Reason)
	}
	commits := runCommits(t, f, run.ID)
	if len(commits) != 3 || !strings.Contains(commits[0], "roll web back on 4 clusters") {
		t.Errorf("commits of %s: %v; want wave dev, wave eu and one rollback of the 4 touched clusters", run.ID, commits)
	}
	for c := range rolloutFleet {
		s.waitApp(f.api, c, "web", time.Minute, synced("2"))
	}
	for _, c := range done.Clusters {
		want := apiv1.ClusterRolledBack
		if c.Wave == 2 {
			want = apiv1.ClusterPending
		}
		if c.Phase != want {
			t.Errorf("%s is %s, want %s", c.Cluster, c.Phase, want)
		}
	}
}

// waitRun polls the run until cond holds and returns it.
func waitRun(t *testing.T, api *hubapi.Client, id string, timeout time.Duration, what string, cond func(*apiv1.Rollout) bool) *apiv1.Rollout {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *apiv1.Rollout
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		r, err := api.GetRollout(ctx, id)
		cancel()
		if err == nil {
			last = r
			if cond(r) {
				return r
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("rollout %s: not %s within %s; last: %+v", id, what, timeout, last)
	return nil
}

// runCommits returns the messages of the run's commits, newest first, from the
// history of every cluster.
func runCommits(t *testing.T, f *nsFleet, id string) []string {
	t.Helper()
	seen := map[string]bool{}
	type entry struct {
		at  time.Time
		msg string
	}
	var all []entry
	for c := range rolloutFleet {
		hl, err := f.api.History(t.Context(), c, hubapi.HistoryQuery{App: "web", Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hl.Entries {
			if !seen[e.Commit] && strings.Contains(e.Message, "Outpost-Rollout: "+id) {
				all = append(all, entry{e.Time, e.Message})
			}
			seen[e.Commit] = true
		}
	}
	out := make([]string, 0, len(all))
	for len(all) > 0 {
		newest := 0
		for i := range all {
			if all[i].at.After(all[newest].at) {
				newest = i
			}
		}
		out = append(out, all[newest].msg)
		all = append(all[:newest], all[newest+1:]...)
	}
	return out
}

// rejectVersion makes the apiserver refuse web's ConfigMap at version in the
// cluster's namespace: a ValidatingAdmissionPolicy, as a cluster's own guardrail
// would.
func rejectVersion(ctx context.Context, t *testing.T, f *nsFleet, cluster, version string) {
	t.Helper()
	ns, err := f.cs.CoreV1().Namespaces().Get(ctx, cluster, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels["e2e.outpost.dev/reject"] = "web-" + version
	if _, err := f.cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	fail := admissionv1.Fail
	_, err = f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "reject-web-" + version},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf(`object.metadata.name != "web" || !has(object.data) || !("version" in object.data) || object.data.version != %q`, version),
				Message:    "web " + version + " is not allowed on this cluster",
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reject-web-" + version},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        "reject-web-" + version,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"e2e.outpost.dev/reject": "web-" + version},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The policy takes effect asynchronously: wait until the apiserver refuses it.
	deadline := time.Now().Add(30 * time.Second)
	force := true
	for {
		probe := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web"},"data":{"version":%q}}`, version)
		_, err := f.cs.CoreV1().ConfigMaps(cluster).Patch(ctx, "web", "application/apply-patch+yaml", []byte(probe),
			metav1.PatchOptions{FieldManager: "e2e-probe", DryRun: []string{metav1.DryRunAll}, Force: &force})
		if err != nil && strings.Contains(err.Error(), "is not allowed on this cluster") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy does not refuse web %s in %s: %v", version, cluster, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
