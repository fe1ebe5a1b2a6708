package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/manifests"
)

// The variables that point the suite at existing clusters (doc.go, README). Setting
// any of the required ones selects the kube fleet; then all of them must be set.
const (
	// envHubKubeconfig is the kubeconfig of the cluster running the hub (required).
	envHubKubeconfig = "OUTPOST_E2E_HUB_KUBECONFIG"
	// envKubeconfigPrefix + "DEV" / "PROD": the kubeconfigs of the clusters dev and
	// prod, running the agents (required).
	envKubeconfigPrefix = "OUTPOST_E2E_KUBECONFIG_"
	// envHubURL is the hub's URL as the suite reaches it (required).
	envHubURL = "OUTPOST_E2E_HUB_URL"
	// envGitHost is the address the suite's Git server listens on, reachable from the
	// pods of every cluster (required; with kind, the kind network's gateway).
	envGitHost = "OUTPOST_E2E_GIT_HOST"
	// envAgentHubURL is the hub's URL as pods in dev and prod reach it (default: the
	// value of OUTPOST_E2E_HUB_URL).
	envAgentHubURL = "OUTPOST_E2E_AGENT_HUB_URL"
	// envImage, when set, makes the suite install manifests/ (hub and agents, cluster
	// profile) with this image before configuring them; unset, Outpost must be
	// installed already (make e2e-kind does it with kubectl apply -k).
	envImage = "OUTPOST_E2E_IMAGE"
	// envRolloutTimeout bounds each rollout (a Go duration; default 3m).
	envRolloutTimeout = "OUTPOST_E2E_ROLLOUT_TIMEOUT"
)

// kubeFleetConfig is where the kube fleet finds its clusters.
type kubeFleetConfig struct {
	// HubKubeconfig is the kubeconfig file of the hub's cluster.
	HubKubeconfig string
	// Kubeconfigs are the kubeconfig files of the agents' clusters, by cluster name.
	Kubeconfigs map[string]string
	// HubURL is the hub as the suite reaches it.
	HubURL string
	// AgentHubURL is the hub as pods of the agents' clusters reach it.
	AgentHubURL string
	// GitHost is the host the Git server listens on and pods fetch from.
	GitHost string
	// Image, when set, is installed from manifests/ before the suite configures it.
	Image string
	// RolloutTimeout bounds each rollout.
	RolloutTimeout time.Duration
}

// kubeFleetConfigFromEnv reads the OUTPOST_E2E_* variables: nil when none of the
// required ones is set (the local fleet), an error naming those missing when only
// some are.
func kubeFleetConfigFromEnv(getenv func(string) string) (*kubeFleetConfig, error) {
	cfg := &kubeFleetConfig{
		HubKubeconfig:  getenv(envHubKubeconfig),
		Kubeconfigs:    map[string]string{},
		HubURL:         strings.TrimRight(getenv(envHubURL), "/"),
		AgentHubURL:    strings.TrimRight(getenv(envAgentHubURL), "/"),
		GitHost:        getenv(envGitHost),
		Image:          getenv(envImage),
		RolloutTimeout: 3 * time.Minute,
	}
	required := map[string]string{envHubKubeconfig: cfg.HubKubeconfig, envHubURL: cfg.HubURL, envGitHost: cfg.GitHost}
	for _, name := range clusterNames {
		v := envKubeconfigPrefix + strings.ToUpper(name)
		cfg.Kubeconfigs[name] = getenv(v)
		required[v] = cfg.Kubeconfigs[name]
	}
	var missing []string
	set := false
	for name, v := range required {
		if v == "" {
			missing = append(missing, name)
		} else {
			set = true
		}
	}
	if !set {
		return nil, nil
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("e2e against existing clusters: %s not set (see e2e/doc.go)", strings.Join(missing, ", "))
	}
	if cfg.AgentHubURL == "" {
		cfg.AgentHubURL = cfg.HubURL
	}
	if v := getenv(envRolloutTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 3m", envRolloutTimeout, v)
		}
		cfg.RolloutTimeout = d
	}
	return cfg, nil
}

// kubeFleet is the fleet on clusters given by kubeconfigs (make e2e-kind): the hub and
// the agents run in the clusters from manifests/, and the suite configures and
// restarts them through the apiservers (kubeOps). The Git remote is the suite's own
// Git server, listening where the pods can reach it.
type kubeFleet struct {
	t       *testing.T
	cfg     *kubeFleetConfig
	ops     *kubeOps
	configs map[string]*rest.Config // admin configs of dev and prod
	git     *gittest.Server
}

// newKubeFleet seeds the Git remote from examples/, installs Outpost if the config
// names an image, and configures the hub on a fresh data volume with the suite's
// admin token and Git remote; agents start when their cluster is registered.
func newKubeFleet(t *testing.T, cfg *kubeFleetConfig) *kubeFleet {
	t.Helper()
	load := func(path string) *rest.Config {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatalf("kubeconfig %s: %v", path, err)
		}
		return rc
	}
	f := &kubeFleet{t: t, cfg: cfg, configs: map[string]*rest.Config{}}
	f.ops = &kubeOps{hub: load(cfg.HubKubeconfig), spokes: map[string]*rest.Config{}, timeout: cfg.RolloutTimeout}
	for _, name := range clusterNames {
		f.configs[name] = load(cfg.Kubeconfigs[name])
		f.ops.spokes[name] = f.configs[name]
	}
	t.Cleanup(f.logPods)
	f.git = gittest.New(t, gittest.WithToken("e2e-git-token"), gittest.WithListenAddr(net.JoinHostPort(cfg.GitHost, "0")))
	f.git.Commit(t, exampleFiles(t), "seed from examples/", "Ada <ada@example.com>")
	ctx := t.Context()
	if cfg.Image != "" {
		if err := f.ops.install(ctx, f.ops.hub, manifests.Hub, cfg.Image); err != nil {
			t.Fatalf("hub cluster: %v", err)
		}
		for _, name := range clusterNames {
			if err := f.ops.install(ctx, f.ops.spokes[name], manifests.AgentCluster, cfg.Image); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	err := f.ops.configureHub(ctx, hubSettings{
		AdminTokens:     "Platform Team <platform@example.com>:" + adminToken + "\n",
		GitURL:          f.git.URL(),
		GitPassword:     f.git.Token(),
		GitPollInterval: "1s",
		ResetData:       true,
	})
	if err != nil {
		t.Fatalf("configure the hub: %v", err)
	}
	if err := waitReady(ctx, cfg.HubURL, cfg.RolloutTimeout); err != nil {
		t.Fatal(err)
	}
	return f
}

// HubURL implements fleet.
func (f *kubeFleet) HubURL() string { return f.cfg.HubURL }

// RESTConfig implements fleet: the config of the cluster's kubeconfig.
func (f *kubeFleet) RESTConfig(cluster string) *rest.Config {
	return rest.CopyConfig(f.configs[cluster])
}

// Git implements fleet.
func (f *kubeFleet) Git() *gittest.Server { return f.git }

// StartAgent implements fleet: the token and Git password Secrets and the agent's
// configuration (cluster name, hub and Git URLs as pods see them) in that cluster,
// then a rollout of the DaemonSet.
func (f *kubeFleet) StartAgent(ctx context.Context, cluster, token string) error {
	return f.ops.configureAgent(ctx, agentSettings{
		Cluster: cluster, Token: token, HubURL: f.cfg.AgentHubURL,
		GitURL: f.git.URL(), GitPassword: f.git.Token(), Interval: "1m",
	})
}

// RestartAgent implements fleet: a rollout restart of the cluster's DaemonSet.
func (f *kubeFleet) RestartAgent(ctx context.Context, cluster string) error {
	return f.ops.restartAgent(ctx, cluster)
}

// RestartHub implements fleet: a rollout restart of the hub's Deployment (its data
// stays on its PersistentVolumeClaim), then /readyz at HubURL.
func (f *kubeFleet) RestartHub(ctx context.Context) error {
	if err := f.ops.restartHub(ctx); err != nil {
		return err
	}
	return waitReady(ctx, f.cfg.HubURL, f.cfg.RolloutTimeout)
}

// logPods logs the tail of the hub's and the agents' pod logs when the test failed.
func (f *kubeFleet) logPods() {
	if !f.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	show := func(where string, rc *rest.Config, name string) {
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return
		}
		pods, err := cs.CoreV1().Pods(manifests.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		if err != nil {
			f.t.Logf("%s: pods of %s: %v", where, name, err)
			return
		}
		lines := int64(40)
		for _, p := range pods.Items {
			data, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
			f.t.Logf("%s: pod %s (%s) log (%v):\n%s", where, p.Name, p.Status.Phase, err, data)
		}
	}
	show("hub cluster", f.ops.hub, manifests.HubName)
	for _, name := range clusterNames {
		show(name, f.configs[name], manifests.AgentName)
	}
}

// TestKubeFleetConfigFromEnv: no variable is the local fleet, some are an error naming
// the missing ones, all give the kube fleet's config.
func TestKubeFleetConfigFromEnv(t *testing.T) {
	full := map[string]string{
		envHubKubeconfig: "/k/hub", envKubeconfigPrefix + "DEV": "/k/dev", envKubeconfigPrefix + "PROD": "/k/prod",
		envHubURL: "http://127.0.0.1:8080/", envGitHost: "172.18.0.1",
	}
	cfg, err := kubeFleetConfigFromEnv(func(string) string { return "" })
	if cfg != nil || err != nil {
		t.Errorf("no variables: %+v, %v; want the local fleet", cfg, err)
	}
	cfg, err = kubeFleetConfigFromEnv(func(k string) string {
		if k == envGitHost || k == envHubURL {
			return ""
		}
		return full[k]
	})
	if err == nil || !strings.Contains(err.Error(), envGitHost+", "+envHubURL+" not set") {
		t.Errorf("some variables: %+v, %v; want an error naming the missing ones", cfg, err)
	}
	cfg, err = kubeFleetConfigFromEnv(func(k string) string { return full[k] })
	if err != nil || cfg.HubURL != "http://127.0.0.1:8080" || cfg.AgentHubURL != cfg.HubURL || cfg.Kubeconfigs["prod"] != "/k/prod" || cfg.RolloutTimeout != 3*time.Minute {
		t.Errorf("all variables: %+v, %v", cfg, err)
	}
	full[envRolloutTimeout] = "soon"
	if _, err := kubeFleetConfigFromEnv(func(k string) string { return full[k] }); err == nil {
		t.Errorf("%s=soon: no error", envRolloutTimeout)
	}
}
