package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// TestFleet walks the mission end to end on two real clusters: register, deploy,
// promote one cluster, a commit straight to Git, drift and its correction, removal,
// rollback, restarts of the hub and an agent, and a token used for the wrong cluster.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite")
	}
	f := newFleet(t)
	api, err := hubapi.New(f.hubURL, adminToken, hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}

	t.Log("register both clusters with the CLI; their agents start with the tokens")
	for _, name := range []string{"dev", "prod"} {
		out, code := f.outpost("clusters", "add", name, "-o", "json")
		if code != 0 {
			t.Fatalf("outpost clusters add %s: exit %d: %s", name, code, out)
		}
		var reg apiv1.RegisterClusterResponse
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &reg); err != nil || reg.Token == "" {
			t.Fatalf("clusters add %s output %q: %v", name, out, err)
		}
		f.tokens[name] = filepath.Join(t.TempDir(), "token-"+name)
		if err := os.WriteFile(f.tokens[name], []byte(reg.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		f.startAgent(name)
	}

	t.Log("set web=1.0.0 on both: applied, healthy, reported")
	for _, name := range []string{"dev", "prod"} {
		if out, code := f.outpost("set", "web", "1.0.0", "--cluster", name); code != 0 {
			t.Fatalf("outpost set web 1.0.0 --cluster %s: exit %d: %s", name, code, out)
		}
	}
	for _, name := range []string{"dev", "prod"} {
		f.waitApp(api, name, "web", 90*time.Second, synced("1.0.0"))
		f.waitImage(name, "web", "web", "nginx:1.0.0")
	}
	page := f.dashboard()
	for _, want := range []string{">dev<", ">prod<", "1.0.0", "Synced", "Healthy"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}

	t.Log("promote web=1.1.0 on dev only")
	start := time.Now()
	if out, code := f.outpost("set", "web", "1.1.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("set web 1.1.0: exit %d: %s", code, out)
	}
	f.waitApp(api, "dev", "web", 60*time.Second, synced("1.1.0"))
	t.Logf("commit → applied and reported on dev: %s", time.Since(start).Round(time.Millisecond))
	f.waitImage("dev", "web", "web", "nginx:1.1.0")
	f.waitImage("prod", "web", "web", "nginx:1.0.0")

	t.Log("a commit straight to Git is picked up")
	f.git.Commit(t, map[string]string{"clusters/prod/apps.yaml": `apps:
  - name: web
    version: "1.0.0"
    vars: { replicas: "3" }
  - name: cache
    version: "7.2.7"
  - name: crd-demo
    version: "0.1.0"
`}, "cache 7.2.7 on prod, by hand", "Ada <ada@example.com>")
	f.waitApp(api, "prod", "cache", 60*time.Second, synced("7.2.7"))

	t.Log("kubectl scale on prod: drift at the hub; drift: correct restores it")
	prod := kubernetes.NewForConfigOrDie(f.clusters["prod"].RESTConfig())
	if _, err := prod.AppsV1().Deployments("web").UpdateScale(t.Context(), "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: 7},
	}, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	f.waitApp(api, "prod", "web", 30*time.Second, func(a apiv1.AppState) bool {
		return len(a.Drift) == 1 && len(a.Drift[0].Fields) == 1 && a.Drift[0].Fields[0].Path == "spec.replicas" && a.Drift[0].Fields[0].Manager == "kubectl"
	})
	appYAML := exampleFiles(t)["apps/web/app.yaml"]
	f.git.Commit(t, map[string]string{"apps/web/app.yaml": strings.Replace(appYAML, "drift: report", "drift: correct", 1)}, "web: correct drift", "")
	f.eventually("prod web replicas restored to 3", 60*time.Second, func() bool {
		d, err := prod.AppsV1().Deployments("web").Get(t.Context(), "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 3
	})

	t.Log("remove cache from dev: pruned there only; rollback web on dev")
	if out, code := f.outpost("unset", "cache", "--cluster", "dev"); code != 0 {
		t.Fatalf("unset cache: exit %d: %s", code, out)
	}
	dev := kubernetes.NewForConfigOrDie(f.clusters["dev"].RESTConfig())
	f.eventually("cache pruned on dev", 60*time.Second, func() bool {
		_, err := dev.AppsV1().StatefulSets("cache").Get(t.Context(), "redis", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := prod.AppsV1().StatefulSets("cache").Get(t.Context(), "redis", metav1.GetOptions{}); err != nil {
		t.Errorf("cache on prod: %v, want it untouched", err)
	}
	if out, code := f.outpost("rollback", "web", "--cluster", "dev"); code != 0 {
		t.Fatalf("rollback web: exit %d: %s", code, out)
	}
	f.waitApp(api, "dev", "web", 60*time.Second, synced("1.0.0"))

	t.Log("restart the hub, then dev's agent: nothing lost, everything converges")
	f.hub.stop()
	f.startHub()
	st, err := api.ClusterStatus(t.Context(), "prod")
	if err != nil || appState(st, "cache").Version != "7.2.7" {
		t.Fatalf("prod status after a hub restart: %+v, %v", st, err)
	}
	f.stopAgent("dev")
	f.startAgent("dev")
	if out, code := f.outpost("set", "web", "1.2.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("set after restarts: exit %d: %s", code, out)
	}
	f.waitApp(api, "dev", "web", 60*time.Second, synced("1.2.0"))

	t.Log("an agent token of one cluster is refused for another")
	devToken, _ := os.ReadFile(f.tokens["dev"])
	wrong, err := hubapi.New(f.hubURL, string(devToken), hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Report(t.Context(), &apiv1.StatusReport{Cluster: "prod", Agent: apiv1.AgentInfo{ID: "impostor"}, SentAt: time.Now()})
	var apiErr *hubapi.APIError
	if !asAPIError(err, &apiErr) || apiErr.Status != 403 {
		t.Errorf("dev's token reporting for prod: %v, want 403", err)
	}
}

func synced(version string) func(apiv1.AppState) bool {
	return func(a apiv1.AppState) bool {
		return a.Phase == apiv1.PhaseSynced && a.Health.Status == apiv1.HealthCurrent && a.Version == version
	}
}

func appState(st *apiv1.ClusterStatus, app string) apiv1.AppState {
	for _, a := range st.Apps {
		if a.App == app {
			return a
		}
	}
	return apiv1.AppState{}
}

// waitApp waits until the hub's status of app on cluster satisfies cond.
func (f *fleet) waitApp(api *hubapi.Client, cluster, app string, timeout time.Duration, cond func(apiv1.AppState) bool) {
	f.t.Helper()
	var last apiv1.AppState
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(f.t.Context(), 5*time.Second)
		st, err := api.ClusterStatus(ctx, cluster)
		cancel()
		if err == nil {
			last = appState(st, app)
			if cond(last) {
				return
			}
		}
		if time.Since(start) > timeout {
			f.t.Fatalf("%s/%s at the hub: condition not met within %s; last: version %q phase %s health %+v error %+v drift %+v",
				cluster, app, timeout, last.Version, last.Phase, last.Health, last.Error, last.Drift)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitImage waits until a Deployment's first container runs image.
func (f *fleet) waitImage(cluster, namespace, name, image string) {
	f.t.Helper()
	cs := kubernetes.NewForConfigOrDie(f.clusters[cluster].RESTConfig())
	f.eventually(cluster+" "+name+" runs "+image, 30*time.Second, func() bool {
		d, err := cs.AppsV1().Deployments(namespace).Get(f.t.Context(), name, metav1.GetOptions{})
		return err == nil && d.Spec.Template.Spec.Containers[0].Image == image
	})
}

func asAPIError(err error, target **hubapi.APIError) bool {
	return errors.As(err, target)
}

// dashboard returns the hub's dashboard page, authenticated with the admin token.
func (f *fleet) dashboard() string {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.hubURL+"/", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.SetBasicAuth("admin", adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("dashboard: %s", resp.Status)
	}
	return string(body)
}
