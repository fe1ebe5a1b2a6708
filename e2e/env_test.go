package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/manifests"
)

const adminToken = "e2e-admin-token-0123456789"

// outpostBin is the outpost binary built for the suite (TestMain); agentBin is the
// agent-only binary the DaemonSet runs (cmd/outpost-agent). Both are built as the
// Dockerfile builds them.
var outpostBin, agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outpostBin, agentBin = filepath.Join(dir, "outpost"), filepath.Join(dir, "outpost-agent")
	build := exec.Command("go", "build", "-buildvcs=false", "-tags", "grpcnotrace", "-o", dir+"/",
		"github.com/outpost-gitops/outpost/cmd/outpost", "github.com/outpost-gitops/outpost/cmd/outpost-agent")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building outpost and outpost-agent: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// localFleet is the fleet on this machine (make e2e, make test): two full local
// clusters with the agent's manifests installed, an in-process Git server seeded from
// examples/, and the hub and the agents as processes of the outpost binary.
type localFleet struct {
	t        *testing.T
	clusters map[string]*testenv.Cluster
	install  []*unstructured.Unstructured // the agent's install objects (cluster profile)
	git      *gittest.Server
	hubAddr  string
	hubURL   string
	hubDir   string
	hub      *proc
	agents   map[string]*proc
	tokens   map[string]string // cluster → agent token file
}

// newLocalFleet starts two full local clusters, installs the agent's manifests into
// each, seeds a Git remote from examples/ and starts the hub; agents start when their
// cluster is registered (StartAgent).
func newLocalFleet(t *testing.T) *localFleet {
	t.Helper()
	objs, err := manifests.Build(manifests.Files(), manifests.AgentCluster)
	if err != nil {
		t.Fatal(err)
	}
	f := &localFleet{t: t, clusters: map[string]*testenv.Cluster{}, install: objs, agents: map[string]*proc{}, tokens: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, name := range clusterNames {
		wg.Go(func() {
			c, err := testenv.Start(t.Context(), testenv.Options{Name: "e2e-" + name, Mode: testenv.ModeFull, Nodes: 2})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			f.clusters[name] = c
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range f.clusters {
			_ = c.Stop()
		}
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, c := range f.clusters {
		if err := installAgent(t.Context(), c, f.install); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f.git = gittest.New(t, gittest.WithToken("e2e-git-token"))
	f.git.Commit(t, exampleFiles(t), "seed from examples/", "Ada <ada@example.com>")
	f.hubDir = filepath.Join(t.TempDir(), "hub")
	f.hubAddr = freeAddr(t)
	f.hubURL = "http://" + f.hubAddr
	if err := f.startHub(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, a := range f.agents {
			a.stop()
		}
		f.hub.stop()
	})
	return f
}

// HubURL implements fleet.
func (f *localFleet) HubURL() string { return f.hubURL }

// RESTConfig implements fleet: the local cluster's admin config.
func (f *localFleet) RESTConfig(cluster string) *rest.Config { return f.clusters[cluster].RESTConfig() }

// Git implements fleet.
func (f *localFleet) Git() *gittest.Server { return f.git }

// StartAgent implements fleet: the agent runs as a process (startAgent).
func (f *localFleet) StartAgent(_ context.Context, cluster, token string) error {
	if _, ok := f.clusters[cluster]; !ok {
		return fmt.Errorf("no cluster %q", cluster)
	}
	f.tokens[cluster] = filepath.Join(f.t.TempDir(), "token-"+cluster)
	if err := os.WriteFile(f.tokens[cluster], []byte(token), 0o600); err != nil {
		return fmt.Errorf("%s: agent token: %w", cluster, err)
	}
	return f.startAgent(cluster)
}

// RestartAgent implements fleet: SIGTERM, then a new process with the same token.
func (f *localFleet) RestartAgent(_ context.Context, cluster string) error {
	a, ok := f.agents[cluster]
	if !ok {
		return fmt.Errorf("%s: no agent running", cluster)
	}
	a.stop()
	delete(f.agents, cluster)
	return f.startAgent(cluster)
}

// RestartHub implements fleet: SIGTERM, then a new process on the same data
// directory and address.
func (f *localFleet) RestartHub(ctx context.Context) error {
	f.hub.stop()
	return f.startHub(ctx)
}

// installAgent applies the agent's install objects (namespace, RBAC, ConfigMap,
// DaemonSet) and waits until the DaemonSet has a ready pod on every node.
func installAgent(ctx context.Context, c *testenv.Cluster, objs []*unstructured.Unstructured) error {
	if err := apply(ctx, c.RESTConfig(), objs); err != nil {
		return fmt.Errorf("install the agent: %w", err)
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	return poll(ctx, "agent DaemonSet ready on both nodes", 60*time.Second, func(ctx context.Context) (bool, error) {
		ds, err := cs.AppsV1().DaemonSets(manifests.Namespace).Get(ctx, manifests.AgentName, metav1.GetOptions{})
		return err == nil && dsReady(ds, 2), err
	})
}

func dsReady(ds *appsv1.DaemonSet, nodes int32) bool {
	return ds.Status.DesiredNumberScheduled == nodes && ds.Status.NumberReady == nodes
}

// exampleFiles reads the sample repository (manifests only).
func exampleFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("..", "examples")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".conf")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// startHub runs `outpost hub` (again, on the same data and address after a stop).
func (f *localFleet) startHub(ctx context.Context) error {
	t := f.t
	dir := t.TempDir()
	tokens := writeFile(t, filepath.Join(dir, "admins"), "Platform Team <platform@example.com>:"+adminToken+"\n")
	gitPW := writeFile(t, filepath.Join(dir, "git-password"), f.git.Token())
	hub, err := startProc(t, "hub", outpostBin, nil, "hub", "--listen="+f.hubAddr, "--data-dir="+f.hubDir,
		"--admin-tokens-file="+tokens, "--git-url="+f.git.URL(), "--git-password-file="+gitPW, "--git-poll-interval=1s")
	if err != nil {
		return err
	}
	f.hub = hub
	return waitReady(ctx, f.hubURL, 30*time.Second)
}

// waitReady waits until the hub at hubURL answers /readyz with 200.
func waitReady(ctx context.Context, hubURL string, timeout time.Duration) error {
	return poll(ctx, "hub "+hubURL+" ready", timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("/readyz: %s", resp.Status)
		}
		return true, nil
	})
}

// startAgent runs the agent for a registered cluster exactly as the installed
// DaemonSet would (its command, args and environment from manifests/), authenticated with the
// token of the installed ServiceAccount; only what a pod gets from its volumes and
// this suite's endpoints differ.
func (f *localFleet) startAgent(cluster string) error {
	t := f.t
	c := f.clusters[cluster]
	pod := manifests.Pod{Name: "outpost-agent-" + cluster + "-e2e", Namespace: manifests.Namespace}
	spec, err := manifests.Process(f.install, "DaemonSet", manifests.AgentName, manifests.AgentContainer, pod)
	if err != nil {
		return err
	}
	sa, err := c.ServiceAccountToken(t.Context(), manifests.Namespace, manifests.AgentName)
	if err != nil {
		return fmt.Errorf("%s: %w", cluster, err)
	}
	dir := t.TempDir()
	env := spec.Env
	env["OUTPOST_CLUSTER"] = cluster
	env["OUTPOST_HUB_URL"] = f.hubURL
	env["OUTPOST_TOKEN_FILE"] = f.tokens[cluster]
	env["OUTPOST_GIT_URL"] = f.git.URL()
	env["OUTPOST_GIT_PASSWORD_FILE"] = writeFile(t, filepath.Join(dir, "git-password"), f.git.Token())
	env["OUTPOST_KUBECONFIG"] = writeKubeconfig(t, filepath.Join(dir, "kubeconfig"), c, sa)
	env["OUTPOST_INTERVAL"] = "1m"
	bin := outpostBin
	if len(spec.Command) > 0 {
		if path.Base(spec.Command[0]) != filepath.Base(agentBin) || len(spec.Command) > 1 {
			return fmt.Errorf("the agent DaemonSet runs %q; the suite has %s and %s", spec.Command, outpostBin, agentBin)
		}
		bin = agentBin
	}
	args := append(append([]string{}, spec.Args...), "--listen=127.0.0.1:0", "--cache-dir="+filepath.Join(dir, "cache"))
	a, err := startProc(t, "agent-"+cluster, bin, env, args...)
	if err != nil {
		return err
	}
	f.agents[cluster] = a
	return nil
}

// proc is an outpost process of the suite, with its output in a log file.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc starts `bin args...` with env added to the suite's environment.
func startProc(t *testing.T, name, bin string, env map[string]string, args ...string) (*proc, error) {
	log := filepath.Join(t.TempDir(), name+".log")
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	out.Close()
	p := &proc{t: t, name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			data, _ := os.ReadFile(log)
			t.Logf("%s log:\n%s", name, tailLines(string(data), 40))
		}
	})
	return p, nil
}

// stop sends SIGTERM (a graceful shutdown: flush reports, release the Lease) and
// waits, killing the process group after 20 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeKubeconfig writes a kubeconfig for cluster c authenticating with token.
func writeKubeconfig(t *testing.T, path string, c *testenv.Cluster, token string) string {
	t.Helper()
	rc := c.RESTConfig()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "agent"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
