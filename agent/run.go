package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/outpost-gitops/outpost/agent/hubclient"
	"github.com/outpost-gitops/outpost/agent/leader"
	"github.com/outpost-gitops/outpost/agent/source"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/pprofserve"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Version is the agent's build version, reported to the hub.
var Version = "dev"

// Run runs the agent until ctx ends: it validates cfg, serves /metrics, /healthz and
// /readyz, and syncs the cluster while it is the leader (or always, without leader
// election). On shutdown it finishes or aborts the current apply, flushes the report
// queue within cfg.ShutdownTimeout, and releases the Lease. Run sets no process
// global (klog's logger, OTel's providers): that is the main's business, and several
// agents may run in one process.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The one place the cluster attribute is added: every line of the agent (leader
	// election, source, hub client, loop, engine, drift watch) carries it once.
	log = log.With("cluster", cfg.ClusterName)
	tel, err := telemetry.Setup(ctx, "outpost-agent", os.Getenv, cfg.TracerProvider)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	deps, err := connect(cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = deps.source.Close() }()
	if err := ensureNamespaces(ctx, deps.kube, cfg.ownNamespaces(), log); err != nil {
		return err
	}
	m, err := newMetrics(tel.Meter, deps.hub)
	if err != nil {
		return err
	}
	var ready atomic.Bool
	stopServer, err := serve(cfg.ListenAddr, tel.Metrics, &ready, log)
	if err != nil {
		return err
	}
	defer stopServer()
	for _, w := range cfg.PlainHTTPWarnings() {
		log.Warn(w)
	}
	if cfg.PprofAddr != "" {
		pp, err := pprofserve.Start(cfg.PprofAddr, log)
		if err != nil {
			return &ConfigError{Flag: "pprof-listen", Env: EnvName("pprof-listen"), Err: err}
		}
		defer func() { _ = pp.Stop(context.WithoutCancel(ctx)) }()
	}

	work := func(ctx context.Context, fence leader.Fence) {
		deps.gate.set(fence)
		defer deps.gate.close() // the term is over: no write until the next one
		l := newLoop(cfg, deps, m, tel.Tracer, log)
		l.fence = fence
		l.run(ctx, &ready)
	}
	if !cfg.LeaderElect {
		work(ctx, nil)
		return nil
	}
	deps.gate.close() // a standby writes nothing
	ready.Store(true) // a standby is ready: it is waiting for the Lease
	return leader.Run(ctx, leader.Config{
		Client: deps.leaseKube, Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName, Identity: cfg.Identity,
		LeaseDuration: cfg.LeaseDuration, Logger: log,
	}, work)
}

// deps are the agent's connections: one HTTP client and one RESTMapper (one discovery
// cache) shared by every client and component, and the leader election's own client.
type deps struct {
	// kube and every client below send their mutating requests through gate
	// (leader.Transport): a replica that no longer leads sends none.
	kube    kubernetes.Interface
	dynamic dynamic.Interface
	mapper  meta.ResettableRESTMapper
	client  client.Client
	source  *source.Source
	hub     *hubclient.Client // nil when standalone
	// gate fences the writes of every client above.
	gate *writeGate
	// leaseKube writes the leader election's Lease, unfenced: its renewal is what
	// keeps the fence.
	leaseKube kubernetes.Interface
}

// lazyMapper is controller-runtime's discovery RESTMapper: it discovers a group when
// one of its kinds is first asked for, and again when a kind is unknown (a CRD just
// created), so Reset, which the components call before asking again, has nothing to do.
type lazyMapper struct{ meta.RESTMapper }

// Reset implements meta.ResettableRESTMapper.
func (lazyMapper) Reset() {}

func connect(cfg Config, log *slog.Logger) (*deps, error) {
	var rc *rest.Config
	if cfg.RESTConfig != nil {
		rc = rest.CopyConfig(cfg.RESTConfig)
	} else {
		var err error
		if rc, err = restConfig(cfg.Kubeconfig); err != nil {
			return nil, &ConfigError{Flag: "kubeconfig", Env: EnvName("kubeconfig"), Err: err}
		}
	}
	// No client-side throttling: concurrency is bounded by --apply-concurrency and the
	// apiserver's own flow control protects it.
	rc.QPS, rc.Burst = -1, 0
	rc.UserAgent = "outpost-agent/" + Version
	d := &deps{gate: &writeGate{}}
	var err error
	if d.leaseKube, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("kubernetes client of the leader Lease: %w", err)
	}
	rc = rest.CopyConfig(rc)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { return leader.Transport(rt, d.gate.check) })
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes HTTP client: %w", err)
	}
	if d.kube, err = kubernetes.NewForConfigAndClient(rc, hc); err != nil {
		return nil, err
	}
	if d.dynamic, err = dynamic.NewForConfigAndClient(rc, hc); err != nil {
		return nil, err
	}
	// controller-runtime's mapper refreshes discovery when a kind is unknown, which a
	// CRD applied in the same sync needs.
	m, err := apiutil.NewDynamicRESTMapper(rc, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes discovery: %w", err)
	}
	d.mapper = lazyMapper{m}
	if d.client, err = client.New(rc, client.Options{HTTPClient: hc, Mapper: m}); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	d.source, err = source.New(source.Config{
		URL: cfg.GitURL, Branch: cfg.GitBranch, CacheDir: cfg.CacheDir, Cluster: cfg.ClusterName, Logger: log,
		Auth: func() (transport.AuthMethod, error) { return gitAuth(cfg) },
	})
	if err != nil {
		return nil, err
	}
	if cfg.HubURL != "" {
		d.hub, err = hubclient.New(hubclient.Config{
			HubURL: cfg.HubURL, Cluster: cfg.ClusterName, Logger: log,
			Agent: apiv1.AgentInfo{ID: cfg.Identity, Pod: os.Getenv("POD_NAME"), Version: Version},
			Token: func() (string, error) { return readSecret(cfg.TokenFile) },
		})
		if err != nil {
			return nil, &ConfigError{Flag: "hub-url", Env: EnvName("hub-url"), Err: err}
		}
	}
	return d, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return rest.InClusterConfig()
}

// gitAuth builds Git credentials from the configured files, read at every request.
func gitAuth(cfg Config) (transport.AuthMethod, error) {
	switch {
	case cfg.GitPasswordFile != "":
		pw, err := readSecret(cfg.GitPasswordFile)
		if err != nil {
			return nil, err
		}
		user := cfg.GitUsername
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: pw}, nil
	case cfg.GitSSHKeyFile != "":
		keys, err := gitssh.NewPublicKeysFromFile("git", cfg.GitSSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("--git-ssh-key-file: %w", err)
		}
		if cfg.GitKnownHostsFile != "" {
			cb, err := gitssh.NewKnownHostsCallback(cfg.GitKnownHostsFile)
			if err != nil {
				return nil, fmt.Errorf("--git-known-hosts-file: %w", err)
			}
			keys.HostKeyCallback = cb
		}
		return keys, nil
	}
	return nil, nil
}

// readSecret reads a token or password file, trimmed; its content never appears in
// errors.
func readSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// serve starts the metrics and health server; the returned function stops it.
func serve(addr string, metrics http.Handler, ready *atomic.Bool, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready: first sync not done", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ConfigError{Flag: "listen", Env: EnvName("listen"), Err: err}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
