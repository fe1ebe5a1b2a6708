package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

// nsFleet is a fleet whose clusters are namespaces of one api-mode apiserver, each
// agent (a process) confined to its own namespace (--namespaces), as in the
// benchmarks' fleet; the hub is a process serving its embedded repository, seeded
// from files, to the agents.
type nsFleet struct {
	t       *testing.T
	cluster *testenv.Cluster
	cs      kubernetes.Interface
	dir     string
	hubAddr string
	hubURL  string
	hubArgs []string
	hub     *proc
	api     *hubapi.Client
}

// startNSFleet starts the apiserver, the hub (with extra hubArgs) and one agent per
// cluster of labels (cluster → cluster.yaml labels, as YAML lines), with files as
// the repository's other content.
func startNSFleet(t *testing.T, name string, labels map[string]string, files map[string]string, hubArgs ...string) *nsFleet {
	t.Helper()
	ctx := t.Context()
	cluster, err := testenv.Start(ctx, testenv.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := &nsFleet{t: t, cluster: cluster, cs: cs, dir: t.TempDir()}
	seed := filepath.Join(f.dir, "seed")
	for c, l := range labels {
		files["clusters/"+c+"/cluster.yaml"] = "labels:\n  " + l + "\n"
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range files {
		full := filepath.Join(seed, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, full, content)
	}
	f.hubAddr = freeAddr(t)
	f.hubURL = "http://" + f.hubAddr
	admins := writeFile(t, filepath.Join(f.dir, "admins"), "Platform Team <platform@example.com>:"+adminToken+"\n")
	f.hubArgs = append([]string{"hub", "--listen=" + f.hubAddr, "--data-dir=" + filepath.Join(f.dir, "hub"),
		"--admin-tokens-file=" + admins, "--git-seed=" + seed}, hubArgs...)
	f.startHub()
	if f.api, err = hubapi.New(f.hubURL, adminToken, hubapi.Options{}); err != nil {
		t.Fatal(err)
	}
	for c := range labels {
		reg, err := f.api.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: c})
		if err != nil {
			t.Fatalf("register %s: %v", c, err)
		}
		tokenFile := writeFile(t, filepath.Join(f.dir, "token-"+c), reg.Token)
		agent, err := startProc(t, "agent-"+c, outpostBin, nil, "agent", "--cluster="+c,
			"--hub-url="+f.hubURL, "--token-file="+tokenFile,
			"--git-url="+f.hubURL+"/git/"+c+".git", "--git-password-file="+tokenFile,
			"--kubeconfig="+cluster.KubeconfigPath(), "--namespaces="+c, "--inventory-namespace="+c,
			"--leader-elect=false", "--listen=", "--interval=10m", "--git-poll-interval=1m",
			"--cache-dir="+filepath.Join(f.dir, "cache-"+c))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(agent.stop)
	}
	return f
}

// startHub starts the hub process (again, on the same data directory) and waits
// until it is ready.
func (f *nsFleet) startHub() {
	f.t.Helper()
	hub, err := startProc(f.t, "hub", outpostBin, nil, f.hubArgs...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.hub = hub
	if err := waitReady(f.t.Context(), f.hubURL, 30*time.Second); err != nil {
		f.t.Fatal(err)
	}
}

// killHub kills the hub with SIGKILL (no graceful shutdown) and waits for it.
func (f *nsFleet) killHub() {
	f.t.Helper()
	_ = syscall.Kill(-f.hub.cmd.Process.Pid, syscall.SIGKILL)
	<-f.hub.done
}
