package benchrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpost-gitops/outpost/agent"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// benchAdminToken is the admin token of the benchmark's hub (loopback only, per run).
const benchAdminToken = "bench-admin-token"

// component is something running in a goroutine of this process.
type component struct {
	cancel context.CancelFunc
	done   chan error
}

// stop ends the component and waits up to 20 s for it.
func (c *component) stop() error {
	c.cancel()
	select {
	case err := <-c.done:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-time.After(20 * time.Second):
		return errors.New("did not stop within 20 s")
	}
}

func start(ctx context.Context, f func(context.Context) error) *component {
	ctx, cancel := context.WithCancel(ctx)
	c := &component{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- f(ctx) }()
	return c
}

// benchHub is a hub running in-process with its embedded repository.
type benchHub struct {
	url   string
	admin *hubapi.Client
	*component
}

// startHubFor runs a hub as startHub does and registers the clusters names with it,
// returning their agent tokens in the order of names. The hub is stopped when the
// registration fails; otherwise the caller stops it.
func startHubFor(ctx context.Context, dir, seed string, log *slog.Logger, names []string) (*benchHub, []string, error) {
	h, err := startHub(ctx, dir, seed, log)
	if err != nil {
		return nil, nil, err
	}
	tokens, err := h.registerAll(ctx, dir, names)
	if err != nil {
		_ = h.stop()
		return nil, nil, err
	}
	return h, tokens, nil
}

// startHub runs a hub on a loopback port with the repository seeded from seed.
func startHub(ctx context.Context, dir, seed string, log *slog.Logger) (*benchHub, error) {
	tokens := filepath.Join(dir, "admins")
	if err := os.WriteFile(tokens, []byte("Bench <bench@example.com>:"+benchAdminToken+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("admin tokens file: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hub listener: %w", err)
	}
	cfg := hub.DefaultConfig()
	cfg.Listener, cfg.DataDir, cfg.AdminTokensFile, cfg.GitSeedDir = l, filepath.Join(dir, "hub"), tokens, seed
	cfg.ShutdownTimeout = 5 * time.Second
	h := &benchHub{url: "http://" + l.Addr().String()}
	h.component = start(ctx, func(ctx context.Context) error { return hub.Run(ctx, cfg, log) })
	if h.admin, err = hubapi.New(h.url, benchAdminToken, hubapi.Options{}); err != nil {
		_ = h.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
		}
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("hub stopped before it was ready: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = h.stop()
			return nil, fmt.Errorf("hub not ready within 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// register registers cluster name at the hub and writes its agent token to a file.
func (h *benchHub) register(ctx context.Context, dir, name string) (tokenFile string, err error) {
	reg, err := h.admin.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: name})
	if err != nil {
		return "", fmt.Errorf("register cluster %s: %w", name, err)
	}
	tokenFile = filepath.Join(dir, "token-"+name)
	if err := os.WriteFile(tokenFile, []byte(reg.Token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token file of %s: %w", name, err)
	}
	return tokenFile, nil
}

// registerAll registers every cluster of names and returns their token files, in order.
func (h *benchHub) registerAll(ctx context.Context, dir string, names []string) ([]string, error) {
	tokens := make([]string, len(names))
	for i, name := range names {
		var err error
		if tokens[i], err = h.register(ctx, dir, name); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// startAgent runs an agent for cluster in-process: Git from the hub, reports to
// hubURL (the hub, or a proxy in front of it).
func startAgent(ctx context.Context, cluster *localk8s.Cluster, name, gitBase, hubURL, tokenFile, cacheDir string,
	log *slog.Logger, mutate func(*agent.Config)) *component {
	cfg := agent.DefaultConfig()
	cfg.ClusterName = name
	cfg.GitURL = gitBase + "/git/" + name + ".git"
	cfg.GitPasswordFile, cfg.TokenFile = tokenFile, tokenFile
	cfg.HubURL = hubURL
	cfg.RESTConfig = cluster.RESTConfig()
	cfg.CacheDir = cacheDir
	cfg.ListenAddr = ""
	cfg.LeaderElect = false
	cfg.Identity = "bench-" + name
	cfg.ShutdownTimeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	return start(ctx, func(ctx context.Context) error { return agent.Run(ctx, cfg, log) })
}

// noNotifyProxy forwards everything to the hub except the desired-state long-poll,
// which it holds unanswered: agents behind it learn of changes only by polling Git.
type noNotifyProxy struct {
	url string
	srv *http.Server
	wg  sync.WaitGroup
}

func startNoNotifyProxy(hubURL string) (*noNotifyProxy, error) {
	target, err := url.Parse(hubURL)
	if err != nil {
		return nil, fmt.Errorf("hub URL %s: %w", hubURL, err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	p := &noNotifyProxy{url: "http://" + l.Addr().String()}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == apiv1.DesiredPath {
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	})}
	p.wg.Go(func() { _ = p.srv.Serve(l) })
	return p, nil
}

func (p *noNotifyProxy) stop() {
	_ = p.srv.Close()
	p.wg.Wait()
}

// appState returns app's state in st.
func appState(st *apiv1.ClusterStatus, app string) (apiv1.AppState, bool) {
	for _, a := range st.Apps {
		if a.App == app {
			return a, true
		}
	}
	return apiv1.AppState{}, false
}

// waitHub polls cluster's status at the hub every interval until cond holds, and
// returns when it first held.
func waitHub(ctx context.Context, c *hubapi.Client, cluster string, interval, timeout time.Duration,
	cond func(*apiv1.ClusterStatus) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		st, err := c.ClusterStatus(ctx, cluster)
		if err == nil && cond(st) {
			return time.Now(), nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("cluster %s: condition not met at the hub within %s (last error: %v)", cluster, timeout, lastErr)
		case <-time.After(interval):
		}
	}
}

// writeSeed writes a GitOps repository for clusters: apps maps an app's directory
// name to its files; every cluster gets every app at version "1".
func writeSeed(dir string, clusters []string, apps map[string]map[string]string) error {
	for app, files := range apps {
		for name, content := range files {
			p := filepath.Join(dir, "apps", app, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("seed %s: %w", p, err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return fmt.Errorf("seed %s: %w", p, err)
			}
		}
	}
	for _, c := range clusters {
		d := filepath.Join(dir, "clusters", c)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("seed %s: %w", d, err)
		}
		list := "apps:\n"
		for app := range apps {
			list += fmt.Sprintf("  - name: %s\n    version: \"1\"\n", app)
		}
		if err := os.WriteFile(filepath.Join(d, "apps.yaml"), []byte(list), 0o644); err != nil {
			return fmt.Errorf("seed apps.yaml of %s: %w", c, err)
		}
		if err := os.WriteFile(filepath.Join(d, "cluster.yaml"), []byte("labels:\n  env: bench\n"), 0o644); err != nil {
			return fmt.Errorf("seed cluster.yaml of %s: %w", c, err)
		}
	}
	return nil
}

// namespacedApp is the files of an app living in its own namespace ns: app.yaml
// (namespace ns, then appYAML's extra lines), a Namespace, and files.
func namespacedApp(ns, appYAML string, files map[string]string) map[string]string {
	out := map[string]string{
		"app.yaml":       "namespace: " + ns + "\n" + appYAML,
		"namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n",
	}
	for name, data := range files {
		out[name] = data
	}
	return out
}

// versionConfigMap is a ConfigMap called name carrying the app's version.
func versionConfigMap(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  version: \"${APP_VERSION}\"\n"
}

// configMapApp is an app of one ConfigMap carrying the version, in namespace ns.
func configMapApp(ns string) map[string]string {
	return namespacedApp(ns, "", map[string]string{"configmap.yaml": versionConfigMap("release")})
}

// deploymentApp is an app of one Deployment (1 replica) in namespace ns with the
// given drift policy.
func deploymentApp(ns, drift string) map[string]string {
	return namespacedApp(ns, "drift: "+drift+"\n", map[string]string{
		"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "nginx:${APP_VERSION}"
`,
	})
}
