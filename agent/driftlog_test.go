package agent

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-gitops/outpost/sync/drift"
	"github.com/outpost-gitops/outpost/sync/object"
)

func logLines(t *testing.T, out string, msg string) []map[string]any {
	t.Helper()
	var got []map[string]any
	for _, l := range checkLogLines(t, out) {
		if l["msg"] == msg {
			got = append(got, l)
		}
	}
	return got
}

func TestDriftLogOncePerChange(t *testing.T) {
	var buf syncBuffer
	d := newDriftLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	obj := object.Ref{Group: "apps", Kind: "Deployment", Namespace: "ns", Name: "web"}
	replicas := func(n int, at time.Time) []*drift.Report {
		return []*drift.Report{{Object: obj, ObservedAt: at, Fields: []drift.FieldDrift{
			{Path: "spec.replicas", Desired: 2, Live: n, Manager: "kubectl", Time: at},
		}}}
	}
	steps := []struct {
		reports []*drift.Report
		want    []string // msg of the lines this step logs
	}{
		{nil, nil},
		{replicas(5, time.Unix(1, 0)), []string{"drift detected"}},
		{replicas(5, time.Unix(2, 0)), nil}, // the same drift seen again: a resync
		{replicas(6, time.Unix(3, 0)), []string{"drift detected"}},
		{[]*drift.Report{{Object: obj}}, []string{"drift gone"}}, // a report without drift
		{nil, nil},
		{[]*drift.Report{{Object: obj, Deleted: true}}, []string{"drift detected"}},
	}
	for i, s := range steps {
		before := len(checkLogLines(t, buf.String()))
		d.observe("web", "report", s.reports)
		lines := checkLogLines(t, buf.String())[before:]
		var msgs []string
		for _, l := range lines {
			msgs = append(msgs, l["msg"].(string))
		}
		if strings.Join(msgs, ",") != strings.Join(s.want, ",") {
			t.Errorf("step %d logged %v, want %v", i, msgs, s.want)
		}
	}
	first := logLines(t, buf.String(), "drift detected")[0]
	want := map[string]any{"app": "web", "object": "Deployment.apps/ns/web", "fields": []any{"spec.replicas"},
		"managers": []any{"kubectl"}, "deleted": false, "policy": "report", "level": "INFO"}
	for k, v := range want {
		if g, _ := json.Marshal(first[k]); string(g) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, g, mustJSON(v))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A standalone agent logs a drift once, with the object, the field and its manager,
// not again when a later event shows the same drift, and again when it changes.
func TestStandaloneAgentLogsDriftOncePerChange(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	buf, stop := runAgentLogging(t, repo.url(), ns, slog.LevelInfo, nil)
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig()).CoreV1().ConfigMaps(ns)
	edit := func(mutate func(*corev1.ConfigMap)) {
		t.Helper()
		cm, err := cs.Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(cm)
		if _, err := cs.Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "tester"}); err != nil {
			t.Fatal(err)
		}
	}
	waitLines := func(n int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			lines := logLines(t, buf.String(), "drift detected")
			if len(lines) >= n || time.Now().After(deadline) {
				return lines
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	edit(func(cm *corev1.ConfigMap) { cm.Data["version"] = "hacked" })
	lines := waitLines(1)
	if len(lines) != 1 {
		t.Fatalf("%d drift lines after one edit, want 1:\n%s", len(lines), buf.String())
	}
	l := lines[0]
	if l["object"] != "ConfigMap/"+ns+"/web" || mustJSON(l["fields"]) != `["data.version"]` || mustJSON(l["managers"]) != `["tester"]` || l["cluster"] != "dev" {
		t.Errorf("drift line = %v, want ConfigMap/%s/web, data.version, manager tester, cluster dev", l, ns)
	}
	// An edit of a field Outpost does not own: an informer event, the same drift.
	edit(func(cm *corev1.ConfigMap) { cm.Annotations = map[string]string{"note": "x"} })
	time.Sleep(500 * time.Millisecond)
	if lines := logLines(t, buf.String(), "drift detected"); len(lines) != 1 {
		t.Fatalf("%d drift lines after an event with the same drift, want still 1:\n%s", len(lines), buf.String())
	}
	// The drift changes: logged again.
	edit(func(cm *corev1.ConfigMap) { cm.Data["version"] = "hacked-again" })
	if lines := waitLines(2); len(lines) != 2 {
		t.Fatalf("%d drift lines after the drift changed, want 2:\n%s", len(lines), buf.String())
	}
	stop()
}
