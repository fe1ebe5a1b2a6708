package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestHelmLookupReadsTheAppsNamespace: the agent gives a Helm app with helm.lookup
// its own read-only lookup: the chart reuses a Secret that exists in the app's
// namespace.
func TestHelmLookupReadsTheAppsNamespace(t *testing.T) {
	ns := env.CreateNamespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, StringData: map[string]string{"password": "s3cret"}}
	if _, err := kubernetes.NewForConfigOrDie(env.RESTConfig()).CoreV1().Secrets(ns).Create(t.Context(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t, ns)
	repo.commit(map[string]string{
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1.0.0"}),
		"apps/web/app.yaml":      "namespace: $NS\nhelm:\n  path: charts/app\n  lookup: true\n",
		"charts/app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/templates/cm.yaml": `{{- $s := lookup "v1" "Secret" .Release.Namespace "db" }}
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {password: {{ if $s }}{{ index $s.data "password" | b64dec | quote }}{{ else }}none{{ end }}}
`,
	}, "helm app with lookup")
	a := startAgent(t, repo.url(), ns, nil)
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["password"] == "s3cret" })
	a.stop(t)
}
