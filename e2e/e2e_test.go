package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/cmd/outpost/cli"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// clusterNames are the clusters of a fleet, as named in examples/clusters/.
var clusterNames = []string{"dev", "prod"}

// fleet is what TestFleet runs against: Outpost on two clusters ("dev" and "prod") and
// a hub, and the Git remote the hub and the agents read. localFleet provisions all of
// it on this machine (make e2e); kubeFleet drives clusters given by kubeconfigs, with
// the hub and the agents installed from manifests/ (make e2e-kind).
type fleet interface {
	// HubURL is the hub's URL as the suite reaches it.
	HubURL() string
	// RESTConfig is an administrator's config of cluster ("dev" or "prod").
	RESTConfig(cluster string) *rest.Config
	// Git is the fleet's Git remote; the suite commits to it directly as a person would.
	Git() *gittest.Server
	// StartAgent starts (or reconfigures) the agent of a registered cluster with its
	// token at the hub.
	StartAgent(ctx context.Context, cluster, token string) error
	// RestartAgent stops the cluster's agent and starts it again with the same token.
	RestartAgent(ctx context.Context, cluster string) error
	// RestartHub stops the hub and starts it again on the same data, returning once
	// it is ready.
	RestartHub(ctx context.Context) error
}

// newFleet returns the kube fleet when the OUTPOST_E2E_* variables name clusters
// (doc.go), else a local fleet.
func newFleet(t *testing.T) fleet {
	t.Helper()
	cfg, err := kubeFleetConfigFromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		return newKubeFleet(t, cfg)
	}
	return newLocalFleet(t)
}

// suite is a fleet with the helpers of the scenarios.
type suite struct {
	fleet
	t *testing.T
}

// outpost runs the CLI against the hub and returns its output and exit code.
func (f *suite) outpost(args ...string) (string, int) {
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(append(args, "--hub", f.HubURL(), "--token", adminToken))
	err := root.ExecuteContext(f.t.Context())
	return out.String() + errOut.String(), cli.ExitCode(err)
}

func (f *suite) eventually(what string, timeout time.Duration, cond func() bool) time.Duration {
	f.t.Helper()
	return eventually(f.t, what, timeout, cond)
}

// eventually polls cond every 50 ms up to timeout, failing t naming what, and
// returns how long it took.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestFleet walks the mission end to end on two real clusters: register, deploy,
// promote one cluster, a commit straight to Git, drift and its correction, removal,
// rollback, restarts of the hub and an agent, and a token used for the wrong cluster.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite")
	}
	f := &suite{t: t, fleet: newFleet(t)}
	api, err := hubapi.New(f.HubURL(), adminToken, hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}

	t.Log("register both clusters with the CLI; their agents start with the tokens")
	tokens := map[string]string{}
	for _, name := range clusterNames {
		out, code := f.outpost("clusters", "add", name, "-o", "json")
		if code != 0 {
			t.Fatalf("outpost clusters add %s: exit %d: %s", name, code, out)
		}
		var reg apiv1.RegisterClusterResponse
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &reg); err != nil || reg.Token == "" {
			t.Fatalf("clusters add %s output %q: %v", name, out, err)
		}
		tokens[name] = reg.Token
		if err := f.StartAgent(t.Context(), name, reg.Token); err != nil {
			t.Fatalf("start the agent of %s: %v", name, err)
		}
	}

	t.Log("set web=1.0.0 on both: applied, healthy, reported")
	for _, name := range clusterNames {
		if out, code := f.outpost("set", "web", "1.0.0", "--cluster", name); code != 0 {
			t.Fatalf("outpost set web 1.0.0 --cluster %s: exit %d: %s", name, code, out)
		}
	}
	for _, name := range clusterNames {
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
	f.Git().Commit(t, map[string]string{"clusters/prod/apps.yaml": `apps:
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
	prod := kubernetes.NewForConfigOrDie(f.RESTConfig("prod"))
	if _, err := prod.AppsV1().Deployments("web").UpdateScale(t.Context(), "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: 7},
	}, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	f.waitApp(api, "prod", "web", 30*time.Second, func(a apiv1.AppState) bool {
		return len(a.Drift) == 1 && len(a.Drift[0].Fields) == 1 && a.Drift[0].Fields[0].Path == "spec.replicas" && a.Drift[0].Fields[0].Manager == "kubectl"
	})
	appYAML := exampleFiles(t)["apps/web/app.yaml"]
	f.Git().Commit(t, map[string]string{"apps/web/app.yaml": strings.Replace(appYAML, "drift: report", "drift: correct", 1)}, "web: correct drift", "")
	f.eventually("prod web replicas restored to 3", 60*time.Second, func() bool {
		d, err := prod.AppsV1().Deployments("web").Get(t.Context(), "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 3
	})

	t.Log("remove cache from dev: pruned there only; rollback web on dev")
	if out, code := f.outpost("unset", "cache", "--cluster", "dev"); code != 0 {
		t.Fatalf("unset cache: exit %d: %s", code, out)
	}
	dev := kubernetes.NewForConfigOrDie(f.RESTConfig("dev"))
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
	if err := f.RestartHub(t.Context()); err != nil {
		t.Fatalf("restart the hub: %v", err)
	}
	st, err := api.ClusterStatus(t.Context(), "prod")
	if err != nil || appState(st, "cache").Version != "7.2.7" {
		t.Fatalf("prod status after a hub restart: %+v, %v", st, err)
	}
	if err := f.RestartAgent(t.Context(), "dev"); err != nil {
		t.Fatalf("restart dev's agent: %v", err)
	}
	if out, code := f.outpost("set", "web", "1.2.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("set after restarts: exit %d: %s", code, out)
	}
	f.waitApp(api, "dev", "web", 60*time.Second, synced("1.2.0"))

	t.Log("an agent token of one cluster is refused for another")
	wrong, err := hubapi.New(f.HubURL(), tokens["dev"], hubapi.Options{})
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
func (f *suite) waitApp(api *hubapi.Client, cluster, app string, timeout time.Duration, cond func(apiv1.AppState) bool) {
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
func (f *suite) waitImage(cluster, namespace, name, image string) {
	f.t.Helper()
	cs := kubernetes.NewForConfigOrDie(f.RESTConfig(cluster))
	f.eventually(cluster+" "+name+" runs "+image, 30*time.Second, func() bool {
		d, err := cs.AppsV1().Deployments(namespace).Get(f.t.Context(), name, metav1.GetOptions{})
		return err == nil && d.Spec.Template.Spec.Containers[0].Image == image
	})
}

func asAPIError(err error, target **hubapi.APIError) bool {
	return errors.As(err, target)
}

// dashboard returns the hub's dashboard page, authenticated with the admin token.
func (f *suite) dashboard() string {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.HubURL()+"/", nil)
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
