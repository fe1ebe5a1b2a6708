package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/chartrepotest"
)

// helmWebChart is the chart "web" at version: a ConfigMap naming the version and
// carrying a greeting that differs per version.
func helmWebChart(version string) map[string]string {
	return map[string]string{
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n" +
			"data:\n  chart: {{ .Chart.Version | quote }}\n  greeting: {{ .Values.greeting | quote }}\n",
		"values.yaml": "greeting: hello from " + version + "\n",
	}
}

// TestHelmChartVersionSet: an app whose chart comes from an HTTP chart repository,
// its version defaulting to the app's version, is bumped by `outpost set` against the
// hub; the agent (a process) fetches the new chart version, applies its content and
// the hub reports it Synced at that version. A bump to a version the repository does
// not have is reported Failed, naming the version, and leaves the cluster as it was.
func TestHelmChartVersionSet(t *testing.T) {
	ctx := t.Context()
	charts := chartrepotest.New("web", helmWebChart)
	t.Cleanup(charts.Close)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := charts.Publish(v); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"apps/web/app.yaml":      "namespace: dev\nhelm:\n  repo: " + charts.URL + "\n  chart: web\n",
		"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.0.0\"\n",
	}
	f := startNSFleet(t, "e2e-helm", map[string]string{"dev": "env: dev"}, files)
	s := &suite{t: t}
	configMap := func() map[string]string {
		t.Helper()
		cm, err := f.cs.CoreV1().ConfigMaps("dev").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ConfigMap dev/web: %v", err)
		}
		return cm.Data
	}
	s.waitApp(f.api, "dev", "web", time.Minute, synced("1.0.0"))
	if got := configMap(); got["chart"] != "1.0.0" || got["greeting"] != "hello from 1.0.0" {
		t.Fatalf("ConfigMap at 1.0.0 = %v", got)
	}

	if out, code := runOutpost(t, f.hubURL, "set", "web", "1.1.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("outpost set web 1.1.0: exit %d\n%s", code, out)
	}
	start := time.Now()
	s.waitApp(f.api, "dev", "web", time.Minute, synced("1.1.0"))
	t.Logf("outpost set web 1.1.0 → reported Synced: %s", time.Since(start).Round(10*time.Millisecond))
	if got := configMap(); got["chart"] != "1.1.0" || got["greeting"] != "hello from 1.1.0" {
		t.Errorf("ConfigMap after the bump = %v, want chart 1.1.0's content", got)
	}
	if n := charts.Downloads("1.1.0"); n != 1 {
		t.Errorf("chart 1.1.0 downloaded %d times, want once", n)
	}

	if out, code := runOutpost(t, f.hubURL, "set", "web", "1.2.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("outpost set web 1.2.0: exit %d\n%s", code, out)
	}
	s.waitApp(f.api, "dev", "web", time.Minute, func(a apiv1.AppState) bool {
		return a.Version == "1.2.0" && a.Phase == apiv1.PhaseFailed && a.Error != nil &&
			strings.Contains(a.Error.Message, "no version 1.2.0")
	})
	if got := configMap(); got["chart"] != "1.1.0" {
		t.Errorf("ConfigMap after the failed bump = %v, want 1.1.0's left in place", got)
	}
}
