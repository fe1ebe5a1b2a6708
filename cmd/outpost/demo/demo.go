// Package demo runs Outpost end to end on one machine, for `make demo`: two local
// Kubernetes clusters (localk8s, full mode with kwok nodes), the hub with its embedded
// Git repository seeded from examples/, and one agent per cluster fetching that
// repository from the hub with its own cluster token. It prints the dashboard URL,
// the kubeconfigs and commands to try, shows sync progress, and on Ctrl-C stops and
// removes everything.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-gitops/outpost/agent"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// Config configures the demo. Defaults are applied by Run.
type Config struct {
	// StateDir holds everything the demo creates; it is emptied at start and removed at
	// the end. Default ".outpost/demo".
	StateDir string
	// ExamplesDir seeds the hub's Git repository. Default "examples".
	ExamplesDir string
	// ListenAddr is the hub's address; when taken, a free port is used. Default
	// "127.0.0.1:8080".
	ListenAddr string
	// Clusters are the clusters to start; each must exist in ExamplesDir. Default dev, prod.
	Clusters []string
	// BinDir holds the testbed binaries (make testbin). Default localk8s.DefaultBinDir.
	BinDir string
	// Out receives the banner and progress lines.
	Out io.Writer
	// Ready, when set, is called once everything runs (for tests).
	Ready func(Running)
	// RolloutApp and RolloutVersion, when set, start a rollout of that app to that
	// version (rollouts/<app>.yaml of the examples) once every app is synced, to show
	// it across the clusters. Default cache 7.4.2; RolloutApp "-" starts none.
	RolloutApp, RolloutVersion string
	// SetGlobals, when set, receives the logger for client-go's messages (client-go.log
	// in StateDir) before the agents start, for what only a main may do
	// (klog.SetSlogLogger): the demo itself sets no process global.
	SetGlobals func(*slog.Logger)
}

// Running describes a started demo.
type Running struct {
	// HubURL is the hub's base URL (the dashboard is at /).
	HubURL string
	// AdminToken authenticates API calls.
	AdminToken string
	// PIDs are the clusters' component processes.
	PIDs []int
	// StateDir is the demo's directory.
	StateDir string
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = filepath.Join(".outpost", "demo")
	}
	if c.ExamplesDir == "" {
		c.ExamplesDir = "examples"
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:8080"
	}
	if len(c.Clusters) == 0 {
		c.Clusters = []string{"dev", "prod"}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.RolloutApp == "" {
		c.RolloutApp, c.RolloutVersion = "cache", "7.4.2"
	}
	return c
}

// Run runs the demo until ctx ends, then stops and removes everything it started.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg = cfg.withDefaults()
	for _, c := range cfg.Clusters {
		if _, err := os.Stat(filepath.Join(cfg.ExamplesDir, "clusters", c)); err != nil {
			return fmt.Errorf("demo cluster %s: not in %s/clusters: %w", c, cfg.ExamplesDir, err)
		}
	}
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return err
	}
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.RemoveAll(state); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	d := &demo{cfg: cfg, state: state}
	defer d.stop()
	if cfg.SetGlobals != nil {
		log, err := d.logger("client-go")
		if err != nil {
			return err
		}
		cfg.SetGlobals(log)
	}
	fmt.Fprintf(cfg.Out, "Starting %d local clusters (etcd, kube-apiserver, controllers, scheduler, kwok nodes)...\n", len(cfg.Clusters))
	if err := d.startClusters(ctx); err != nil {
		return err
	}
	if err := d.startHub(ctx); err != nil {
		return err
	}
	if err := d.startAgents(ctx); err != nil {
		return err
	}
	d.banner()
	if cfg.Ready != nil {
		r := Running{HubURL: d.hubURL, AdminToken: d.adminToken, StateDir: state}
		for _, c := range d.clusters {
			r.PIDs = append(r.PIDs, c.PIDs()...)
		}
		cfg.Ready(r)
	}
	d.progress(ctx)
	fmt.Fprintln(cfg.Out, "\nStopping agents, hub and clusters...")
	return nil
}

// demo holds what Run started.
type demo struct {
	cfg        Config
	state      string
	clusters   []*localk8s.Cluster
	hubURL     string
	adminToken string
	cancel     []context.CancelFunc // hub and agents, in start order
	wg         sync.WaitGroup
}

func (d *demo) logger(name string) (*slog.Logger, error) {
	f, err := os.OpenFile(filepath.Join(d.state, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})), nil
}

func (d *demo) startClusters(ctx context.Context) error {
	type started struct {
		c   *localk8s.Cluster
		err error
	}
	results := make([]started, len(d.cfg.Clusters))
	var wg sync.WaitGroup
	for i, name := range d.cfg.Clusters {
		wg.Go(func() {
			c, err := localk8s.Start(ctx, localk8s.Options{
				Name: name, Mode: localk8s.ModeFull, Nodes: 2, BinDir: d.cfg.BinDir,
				Dir: filepath.Join(d.state, "clusters", name),
			})
			results[i] = started{c, err}
		})
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		d.clusters = append(d.clusters, r.c)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The install manifests create outpost-system (the agent's Lease and inventories).
	for _, c := range d.clusters {
		cs, err := kubernetes.NewForConfig(c.RESTConfig())
		if err != nil {
			return err
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "outpost-system"}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster %s: %w", c.Name(), err)
		}
	}
	return nil
}

func (d *demo) startHub(ctx context.Context) error {
	d.adminToken = "demo-" + randomHex(16)
	tokens := filepath.Join(d.state, "admin-tokens")
	if err := os.WriteFile(tokens, []byte("Demo Admin <admin@outpost.invalid>:"+d.adminToken+"\n"), 0o600); err != nil {
		return err
	}
	l, err := net.Listen("tcp", d.cfg.ListenAddr)
	if err != nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("hub listener: %w", err)
		}
	}
	d.hubURL = "http://" + l.Addr().String()
	cfg := hub.DefaultConfig()
	cfg.Listener = l
	cfg.DataDir = filepath.Join(d.state, "hub")
	cfg.AdminTokensFile = tokens
	cfg.GitSeedDir = d.cfg.ExamplesDir
	cfg.DashboardPublic = true // a local, read-only view
	log, err := d.logger("hub")
	if err != nil {
		return err
	}
	d.run(ctx, "hub", func(ctx context.Context) error { return hub.Run(ctx, cfg, log) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(d.hubURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub not ready within 30 s; see %s", filepath.Join(d.state, "hub.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run starts a component in a goroutine with its own cancel.
func (d *demo) run(ctx context.Context, name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(ctx)
	d.cancel = append(d.cancel, cancel)
	d.wg.Go(func() {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(d.cfg.Out, "%s stopped: %v (see %s)\n", name, err, filepath.Join(d.state, name+".log"))
		}
	})
}

func (d *demo) startAgents(ctx context.Context) error {
	client, err := hubapi.New(d.hubURL, d.adminToken, hubapi.Options{})
	if err != nil {
		return err
	}
	for _, c := range d.clusters {
		reg, err := client.RegisterCluster(ctx, apiv1.RegisterClusterRequest{Name: c.Name()})
		if err != nil {
			return fmt.Errorf("register cluster %s: %w", c.Name(), err)
		}
		token := filepath.Join(d.state, "token-"+c.Name())
		if err := os.WriteFile(token, []byte(reg.Token+"\n"), 0o600); err != nil {
			return err
		}
		cfg := agent.DefaultConfig()
		cfg.ClusterName = c.Name()
		cfg.GitURL = d.hubURL + "/git/" + c.Name() + ".git" // the hub serves its repository
		cfg.GitPasswordFile = token
		cfg.HubURL = d.hubURL
		cfg.TokenFile = token
		cfg.Kubeconfig = c.KubeconfigPath()
		cfg.CacheDir = filepath.Join(d.state, "agent-"+c.Name())
		cfg.ListenAddr = ""
		cfg.Identity = "demo-agent-" + c.Name()
		cfg.Interval = time.Minute
		log, err := d.logger("agent-" + c.Name())
		if err != nil {
			return err
		}
		d.run(ctx, "agent-"+c.Name(), func(ctx context.Context) error { return agent.Run(ctx, cfg, log) })
	}
	return nil
}

func (d *demo) banner() {
	out := d.cfg.Out
	fmt.Fprintf(out, "\nOutpost demo is running.\n\n  Dashboard:  %s/\n\n", d.hubURL)
	for _, c := range d.clusters {
		fmt.Fprintf(out, "  Cluster %-5s KUBECONFIG=%s\n", c.Name(), c.KubeconfigPath())
	}
	kubectl := d.clusters[0].Binaries().Kubectl
	first := d.clusters[0]
	fmt.Fprintf(out, `
Try, in another shell (from the repository root):

  export OUTPOST_HUB_URL=%s OUTPOST_TOKEN=%s
  bin/outpost set web 1.27.4 --cluster %s          # a commit through the hub; the agent applies it
  KUBECONFIG=%s %s -n web scale deployment/web --replicas=5   # drift, seen at the hub
  bin/outpost status %s                            # versions, health and drift per app

Logs: %s/*.log    Ctrl-C stops and removes everything.

`, d.hubURL, d.adminToken, first.Name(), first.KubeconfigPath(), kubectl, first.Name(), d.state)
}

// progress prints each change of an app's version, phase, health or drift at the hub
// until ctx ends.
func (d *demo) progress(ctx context.Context) {
	client, err := hubapi.New(d.hubURL, d.adminToken, hubapi.Options{})
	if err != nil {
		return
	}
	seen := map[string]string{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	rollout := ""
	for {
		synced := true
		for _, c := range d.clusters {
			st, err := client.ClusterStatus(ctx, c.Name())
			if err != nil {
				synced = false
				continue
			}
			synced = synced && allHealthy(st)
			for _, line := range statusLines(st) {
				key := line[:strings.Index(line, " ")]
				if seen[key] != line {
					seen[key] = line
					fmt.Fprintf(d.cfg.Out, "%s  %s\n", time.Now().Format("15:04:05"), line)
				}
			}
		}
		if rollout == "" && synced && d.cfg.RolloutApp != "-" {
			rollout = d.startRollout(ctx, client)
		}
		if rollout != "" && rollout != "-" {
			if r, err := client.GetRollout(ctx, rollout); err == nil {
				line := fmt.Sprintf("rollout %s: %s=%s %s, wave %s", r.ID, r.App, r.Version, r.State, waveOf(r))
				if seen["rollout"] != line {
					seen["rollout"] = line
					fmt.Fprintf(d.cfg.Out, "%s  %s\n", time.Now().Format("15:04:05"), line)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// startRollout starts the demo's rollout and says where to watch it; it returns
// the run's ID, or "-" when it could not start.
func (d *demo) startRollout(ctx context.Context, client *hubapi.Client) string {
	r, err := client.StartRollout(ctx, d.cfg.RolloutApp, d.cfg.RolloutVersion)
	if err != nil {
		fmt.Fprintf(d.cfg.Out, "%s  rollout of %s=%s not started: %v\n", time.Now().Format("15:04:05"), d.cfg.RolloutApp, d.cfg.RolloutVersion, err)
		return "-"
	}
	var waves []string
	for _, w := range r.Waves {
		waves = append(waves, w.Name)
	}
	fmt.Fprintf(d.cfg.Out, `
Every app is synced. Rolling %s out to %s across the waves %s (examples/rollouts/%s.yaml):
  Rollout:  %s/rollouts/%s
  bin/outpost rollout status %s

`, r.App, r.Version, strings.Join(waves, " -> "), r.App, d.hubURL, r.ID, r.App)
	return r.ID
}

// allHealthy reports whether every app of a cluster is Synced and Current.
func allHealthy(st *apiv1.ClusterStatus) bool {
	for _, a := range st.Apps {
		if a.Phase != apiv1.PhaseSynced || a.Health.Status != apiv1.HealthCurrent {
			return false
		}
	}
	return len(st.Apps) > 0
}

// waveOf names a run's current wave: "2/2 prod", or "done".
func waveOf(r *apiv1.Rollout) string {
	if r.Wave < len(r.Waves) {
		return fmt.Sprintf("%d/%d %s", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Name)
	}
	return "done"
}

// statusLines formats a cluster's apps as "cluster/app version phase health [drift]".
func statusLines(st *apiv1.ClusterStatus) []string {
	var lines []string
	for _, a := range st.Apps {
		version, phase, health := a.Version, string(a.Phase), string(a.Health.Status)
		if phase == "" {
			version, phase, health = a.DesiredVersion, "not reported yet", "-"
		}
		line := fmt.Sprintf("%s/%s %s %s %s", st.Cluster.Name, a.App, version, phase, health)
		if len(a.Drift) > 0 {
			line += fmt.Sprintf(" (%d drifted: %s by %s)", len(a.Drift), firstField(a.Drift), firstManager(a.Drift))
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return lines
}

func firstField(drift []apiv1.Drift) string {
	if len(drift[0].Fields) == 0 {
		return drift[0].Object.String() + " deleted"
	}
	return drift[0].Fields[0].Path
}

func firstManager(drift []apiv1.Drift) string {
	if len(drift[0].Fields) == 0 || drift[0].Fields[0].Manager == "" {
		return "someone"
	}
	return drift[0].Fields[0].Manager
}

// stop cancels the agents, then the hub, waits for them, and stops the clusters.
func (d *demo) stop() {
	for i := len(d.cancel) - 1; i >= 0; i-- {
		d.cancel[i]()
	}
	d.wg.Wait()
	for _, c := range d.clusters {
		_ = c.Stop()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
