package localk8s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Mode selects which components a cluster runs.
type Mode int

const (
	// ModeAPI runs etcd and kube-apiserver only: fast, for package tests.
	ModeAPI Mode = iota
	// ModeFull adds kube-controller-manager, kube-scheduler and kwok with fake nodes, so
	// workloads are scheduled, become Available, and health means something.
	ModeFull
)

func (m Mode) String() string {
	if m == ModeFull {
		return "full"
	}
	return "api"
}

// Options configure a cluster. The zero value is a ModeAPI cluster in a temporary
// directory; defaults are applied in one place, withDefaults.
type Options struct {
	// Name names the cluster in logs, errors and its directory. Default "testenv".
	Name string
	// Mode selects the components. Default ModeAPI.
	Mode Mode
	// Nodes is the number of kwok fake nodes in ModeFull. Default 2, or 0 when
	// RealNodes is set.
	Nodes int
	// RealNodes is the number of real nodes in ModeFull: each a kubelet with its own
	// containerd, runc and CNI bridge on this host, running real containers (see
	// realnode.go and docs/real-nodes.md). Needs root, the Debian packages of
	// `hack/deps.sh real-nodes` and `make testbin-real-nodes`; one such cluster per
	// host at a time; not with Detach. Default 0.
	RealNodes int
	// BinDir holds the testbed binaries (k8s-*/, etcd-*/, kwok-*/). Default DefaultBinDir().
	BinDir string
	// Dir is where the cluster keeps its files (certificates, etcd data, logs,
	// kubeconfig). Default: a new temporary directory, removed by Stop.
	Dir string
	// KeepDir keeps Dir after Stop, for reading the component logs.
	KeepDir bool
	// Detach lets the processes outlive the calling process (for `outpost dev cluster
	// up`); they are stopped by StopDetached with the state file in Dir.
	Detach bool
	// StartTimeout bounds the start of each component. Default 90s.
	StartTimeout time.Duration
	// Logger receives progress messages. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "testenv"
	}
	if o.Nodes <= 0 && o.RealNodes == 0 {
		o.Nodes = 2
	}
	if o.Nodes < 0 {
		o.Nodes = 0
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Cluster is a running local control plane.
type Cluster struct {
	opts       Options
	bins       *Binaries
	dir        string
	ownDir     bool // dir was created by Start and is removed by Stop
	pki        *pki
	host       string // https://127.0.0.1:port
	adminToken string
	kubeconfig string
	procs      []*process // in start order
	startup    time.Duration
	// realNodes are the real nodes (Options.RealNodes); realNodeLock is the host-wide
	// lock they hold.
	realNodes    []*realNode
	realNodeLock *os.File
}

// Start starts a cluster and returns when it is ready to use: in ModeAPI when the
// apiserver answers /readyz, in ModeFull when every fake node is Ready and the default
// ServiceAccount exists. On failure, everything started is stopped again and the error
// names the component and its log file.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	opts = opts.withDefaults()
	begin := time.Now()
	bins, err := LocateBinaries(ctx, opts.BinDir, opts.Mode == ModeFull)
	if err != nil {
		return nil, err
	}
	if opts.RealNodes > 0 {
		switch {
		case opts.Mode != ModeFull:
			return nil, fmt.Errorf("cluster %s: real nodes need ModeFull (controllers and scheduler)", opts.Name)
		case opts.Detach:
			return nil, fmt.Errorf("cluster %s: real nodes cannot be detached (Stop cleans up their containers, mounts, bridges and cgroups)", opts.Name)
		}
		if err := locateRealNodeBinaries(ctx, bins); err != nil {
			return nil, err
		}
		if err := checkRealNodeHost(); err != nil {
			return nil, err
		}
	}
	c = &Cluster{opts: opts, bins: bins, dir: opts.Dir}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "outpost-"+opts.Name+"-"); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", opts.Name, err)
		}
		c.ownDir = true
	} else if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", opts.Name, err)
	}
	defer func() {
		if err != nil {
			_ = c.stopAll()
			err = fmt.Errorf("cluster %s (files kept in %s): %w", opts.Name, c.dir, err)
		}
	}()
	if c.pki, err = writePKI(c.dir); err != nil {
		return c, err
	}
	if opts.RealNodes > 0 {
		if c.realNodeLock, err = lockRealNodes(); err != nil {
			return c, err
		}
		if err := c.prepareRealNodes(ctx); err != nil {
			return c, err
		}
	}
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	if opts.Mode == ModeFull {
		if err := c.startNodeComponents(ctx); err != nil {
			return c, err
		}
	}
	if opts.RealNodes > 0 {
		if err := c.startRealNodes(ctx); err != nil {
			return c, err
		}
	}
	c.startup = time.Since(begin)
	if opts.Detach {
		if err := c.writeState(); err != nil {
			return c, err
		}
	}
	opts.Logger.Info("cluster started", "cluster", opts.Name, "mode", opts.Mode.String(), "host", c.host, "startup", c.startup)
	return c, nil
}

// startControlPlane starts etcd and kube-apiserver and writes the admin kubeconfig.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	etcd, err := c.start("etcd", c.bins.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", "--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, etcd, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health", "")
	}); err != nil {
		return err
	}

	c.adminToken = randomToken()
	tokens := filepath.Join(c.dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	c.host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	// Pods reach the apiserver through the Service kubernetes (10.0.0.1:443, which
	// kube-proxy forwards to the advertised address): with real nodes that is node 0's
	// bridge address, and the endpoints are kept by the lease reconciler.
	addrs := []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"}
	if len(c.realNodes) > 0 {
		addrs = []string{"--bind-address=0.0.0.0", "--advertise-address=" + c.realNodes[0].gateway, "--endpoint-reconciler-type=lease"}
	}
	api, err := c.start("kube-apiserver", c.bins.APIServer, append(addrs,
		"--etcd-servers="+etcdURL,
		"--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+c.pki.serverCert, "--tls-private-key-file="+c.pki.serverKey,
		"--client-ca-file="+c.pki.caCert,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.saPub,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir="+filepath.Join(c.dir, "apiserver-certs"),
	)...)
	if err != nil {
		return err
	}
	client, err := c.httpClient()
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, api, func(ctx context.Context) error {
		return httpOK(ctx, client, c.host+"/readyz", c.adminToken)
	}); err != nil {
		return err
	}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	return c.writeKubeconfig(c.kubeconfig)
}

// start starts one component, recording it for Stop.
func (c *Cluster) start(name, bin string, args ...string) (*process, error) {
	return c.startWithEnv(name, c.componentEnv(name), bin, args...)
}

// startWithEnv starts one component with env added to this process's environment
// (a variable in env wins), recording it for Stop.
func (c *Cluster) startWithEnv(name string, env []string, bin string, args ...string) (*process, error) {
	p, err := startProcess(name, filepath.Join(c.dir, name+".log"), c.opts.Detach, env, bin, args...)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// componentEnv is what a component gets added to the environment.
func (c *Cluster) componentEnv(name string) []string {
	if name == "kwok" {
		return []string{"HOME=" + c.dir} // kwok keeps state under $HOME/.kwok
	}
	return nil
}

// waitFor polls ready until it succeeds, the process exits, or the start timeout ends.
func (c *Cluster) waitFor(ctx context.Context, p *process, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.exitedError(); err != nil {
			return err
		}
		last := ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (last check: %v); see %s:\n%s", p.name, c.opts.StartTimeout, last, p.logPath, tail(p.logPath, 15))
		case <-tick.C:
		}
	}
}

// httpClient returns an HTTP client trusting the cluster's CA.
func (c *Cluster) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.pki.caPEM) {
		return nil, fmt.Errorf("loading cluster CA")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}, nil
}

func httpOK(ctx context.Context, client *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// writeKubeconfig writes an admin kubeconfig for this cluster to path.
func (c *Cluster) writeKubeconfig(path string) error {
	name := c.opts.Name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.host, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: c.adminToken}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin"}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.opts.Name }

// Mode returns the cluster's mode.
func (c *Cluster) Mode() Mode { return c.opts.Mode }

// Dir returns the directory holding the cluster's files and component logs.
func (c *Cluster) Dir() string { return c.dir }

// Host returns the apiserver URL.
func (c *Cluster) Host() string { return c.host }

// KubeconfigPath returns the path of the admin kubeconfig.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// Binaries returns the testbed binaries the cluster runs, including kubectl.
func (c *Cluster) Binaries() Binaries { return *c.bins }

// StartupDuration is how long Start took, binary checks included.
func (c *Cluster) StartupDuration() time.Duration { return c.startup }

// PIDs returns the process ids of the cluster's components, in start order.
func (c *Cluster) PIDs() []int {
	pids := make([]int, 0, len(c.procs))
	for _, p := range c.procs {
		pids = append(pids, p.pid())
	}
	return pids
}

// RESTConfig returns a fresh admin (system:masters) client configuration. Client-side
// rate limiting is off: the apiserver's own flow control is what tests should meet.
func (c *Cluster) RESTConfig() *rest.Config {
	cfg := c.TokenConfig(c.adminToken)
	return cfg
}

// TokenConfig returns a client configuration for this cluster authenticating with a
// bearer token, e.g. a ServiceAccount token from ServiceAccountToken.
func (c *Cluster) TokenConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.pki.caPEM...)},
		QPS:             -1,
	}
}

// Stop stops every component (newest first) and waits for the processes to exit, then
// removes the cluster's directory unless it was given or KeepDir is set.
func (c *Cluster) Stop() error {
	err := c.stopAll()
	if c.ownDir && !c.opts.KeepDir && err == nil {
		if rmErr := os.RemoveAll(c.dir); rmErr != nil {
			return fmt.Errorf("cluster %s: removing %s: %w", c.opts.Name, c.dir, rmErr)
		}
	}
	return err
}

// KeepFiles makes Stop keep the cluster's directory (component logs), e.g. when tests
// failed. It reports whether that changed anything: false when the directory was given
// in Options, which Stop never removes.
func (c *Cluster) KeepFiles() bool {
	if !c.ownDir {
		return false
	}
	c.opts.KeepDir = true
	return true
}

// stopAll stops the processes, then cleans up after the real nodes.
func (c *Cluster) stopAll() error {
	return errors.Join(c.stopProcesses(), c.stopRealNodes())
}

func (c *Cluster) stopProcesses() error {
	var first error
	var groups []int
	for i := len(c.procs) - 1; i >= 0; i-- {
		groups = append(groups, c.procs[i].pid())
		if err := c.procs[i].stop(10 * time.Second); err != nil && first == nil {
			first = fmt.Errorf("cluster %s: %w", c.opts.Name, err)
		}
	}
	c.procs = nil
	// Every process group was sent SIGKILL: check that nothing of the cluster is left
	// (a forked child outside the group would be), rather than report it stopped.
	deadline := time.Now().Add(30 * time.Second)
	for first == nil {
		left := groupMembers(groups, nil)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			first = &StillRunningError{Cluster: c.opts.Name, Dir: c.dir, PIDs: left}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return first
}

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing listens on at
// the moment, for a server under test; like the clusters' ports it is released before
// use, so another process could take it in between.
func FreeAddr() (string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), nil
}

// freePorts asks the kernel for n distinct free loopback ports. They are released
// before use, so another process could take one in between; the component then fails
// to bind and Start reports it with its log.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// RandomSuffix returns six random lower-case hex digits, for names unique in a
// cluster.
func RandomSuffix() string { return randomToken()[:6] }

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
