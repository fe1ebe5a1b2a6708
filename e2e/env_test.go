package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-gitops/outpost/agent"
	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/internal/cli"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

const adminToken = "e2e-admin-token-0123456789"

// fleet is what a scenario runs against: clusters, a Git remote, the hub, agents.
type fleet struct {
	t        *testing.T
	clusters map[string]*testenv.Cluster
	git      *gittest.Server
	hubURL   string
	hubDir   string
	hubLis   string
	stopHub  func()
	agents   map[string]context.CancelFunc
	tokens   map[string]string // cluster → token file
	agentsWG sync.WaitGroup
}

// newFleet provisions two full local clusters, a Git remote seeded from examples/ and
// the hub; agents start when their clusters are registered (startAgent).
func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, clusters: map[string]*testenv.Cluster{}, agents: map[string]context.CancelFunc{}, tokens: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, name := range []string{"dev", "prod"} {
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
		cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "outpost-system"}}
		if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("cluster %s: %v", name, err)
		}
	}
	f.git = gittest.New(t, gittest.WithToken("e2e-git-token"))
	f.git.Commit(t, exampleFiles(t), "seed from examples/", "Ada <ada@example.com>")
	f.hubDir = filepath.Join(t.TempDir(), "hub")
	f.startHub()
	t.Cleanup(func() {
		for _, cancel := range f.agents {
			cancel()
		}
		f.agentsWG.Wait()
		f.stopHub()
	})
	return f
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

// startHub runs the hub (again, on the same data and address after stopHub).
func (f *fleet) startHub() {
	t := f.t
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "admins")
	gitPW := filepath.Join(dir, "git-password")
	if err := os.WriteFile(tokens, []byte("Platform Team <platform@example.com>:"+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gitPW, []byte(f.git.Token()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := f.hubLis
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f.hubLis = l.Addr().String()
	f.hubURL = "http://" + f.hubLis
	cfg := hub.DefaultConfig()
	cfg.Listener, cfg.DataDir, cfg.AdminTokensFile = l, f.hubDir, tokens
	cfg.GitURL, cfg.GitPasswordFile, cfg.GitPollInterval = f.git.URL(), gitPW, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx, cfg, testLogger(t, "hub")) }()
	f.stopHub = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("hub did not stop within 20 s")
		}
	}
	f.eventually("hub ready", 30*time.Second, func() bool {
		resp, err := http.Get(f.hubURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startAgent runs the agent of a registered cluster: it fetches the Git remote and
// reports to the hub with the cluster's token.
func (f *fleet) startAgent(cluster string) {
	t := f.t
	t.Helper()
	gitPW := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(gitPW, []byte(f.git.Token()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig()
	cfg.ClusterName = cluster
	cfg.GitURL, cfg.GitPasswordFile = f.git.URL(), gitPW
	cfg.HubURL, cfg.TokenFile = f.hubURL, f.tokens[cluster]
	cfg.RESTConfig = f.clusters[cluster].RESTConfig()
	cfg.CacheDir = t.TempDir()
	cfg.ListenAddr = ""
	cfg.Identity = "agent-" + cluster
	cfg.LeaseDuration = 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	f.agents[cluster] = cancel
	f.agentsWG.Go(func() {
		if err := agent.Run(ctx, cfg, testLogger(t, "agent-"+cluster)); err != nil && ctx.Err() == nil {
			t.Errorf("agent %s: %v", cluster, err)
		}
	})
}

func (f *fleet) stopAgent(cluster string) {
	f.agents[cluster]()
	delete(f.agents, cluster)
}

// outpost runs the CLI against the hub and returns its output and exit code.
func (f *fleet) outpost(args ...string) (string, int) {
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(append(args, "--hub", f.hubURL, "--token", adminToken))
	err := root.ExecuteContext(f.t.Context())
	return out.String() + errOut.String(), cli.ExitCode(err)
}

func (f *fleet) eventually(what string, timeout time.Duration, cond func() bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			f.t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}
