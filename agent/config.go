package agent

import (
	"errors"
	"fmt"
	"github.com/outpost-gitops/outpost/internal/netsec"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/outpost-gitops/outpost/agent/hubclient"
	"github.com/outpost-gitops/outpost/internal/flagenv"
	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/render"
)

// Config is everything the agent needs. Every field has a flag and an OUTPOST_* env var
// (the flag wins); defaults live in DefaultConfig.
type Config struct {
	// ClusterName is this cluster's name in the GitOps repo (clusters/<name>/).
	ClusterName string
	// GitURL is the GitOps repository: https://, http://, ssh://, user@host:path or file://.
	GitURL string
	// GitBranch is the branch to follow.
	GitBranch string
	// GitUsername is the HTTP basic-auth user (default "git" when a password file is set).
	GitUsername string
	// GitPasswordFile holds the HTTP password or token.
	GitPasswordFile string
	// GitSSHKeyFile holds the SSH private key for ssh:// and scp-like URLs.
	GitSSHKeyFile string
	// GitKnownHostsFile holds the SSH known_hosts used to verify the server.
	GitKnownHostsFile string
	// HubURL is the hub's base URL, or the URLs of several hub replicas separated by
	// commas (the agent uses one and fails over to the next); empty runs the agent
	// standalone from Git.
	HubURL string
	// TokenFile holds this cluster's agent token for the hub (required with HubURL).
	TokenFile string
	// Interval is the full resync period, the safety net (jittered by 10%).
	Interval time.Duration
	// GitPollInterval is how often the agent asks Git whether the branch moved when no
	// hub notification says so (a cheap ref listing, not a fetch).
	GitPollInterval time.Duration
	// Concurrency is how many apps sync at once.
	Concurrency int
	// ApplyConcurrency is how many objects of one app are applied at once.
	ApplyConcurrency int
	// Kubeconfig is the kubeconfig path; empty uses the in-cluster configuration.
	Kubeconfig string
	// ListenAddr serves /metrics, /healthz and /readyz; empty disables it.
	ListenAddr string
	// PprofAddr, when set, serves Go's net/http/pprof profiles on this address (e.g.
	// 127.0.0.1:6060), apart from ListenAddr and without authentication: bind it to
	// loopback. Empty (the default) serves none.
	PprofAddr string
	// PprofAllowRemote lets PprofAddr be a non-loopback address.
	PprofAllowRemote bool
	// RequireTLS refuses plain-HTTP URLs to other hosts (otherwise warned about).
	RequireTLS bool
	// CacheDir keeps the Git clone, rendered revisions and downloaded Helm charts
	// (under charts/).
	CacheDir string
	// ChartCredentialsFile, when set, is a YAML file mapping the host of a Helm chart
	// repository or OCI registry to its credential ({host: {username, password}});
	// it is read at each download. Credentials never come from Git.
	ChartCredentialsFile string
	// ChartPlainHTTPHosts are OCI registries reached over plain HTTP (a registry
	// inside the cluster); default none.
	ChartPlainHTTPHosts []string
	// ChartKeyring, when set, is a PGP public keyring (binary, GnuPG keybox or
	// ASCII-armored) holding the keys a Helm chart's provenance file (.prov) must be
	// signed by. It is read at start (a restart picks up a change); it is the trust
	// anchor of chart verification and never comes from Git. Default none: a chart
	// that must be verified fails.
	ChartKeyring string
	// ChartVerify is which remote charts are verified against ChartKeyring:
	// "if-required" (the apps whose app.yaml says helm.verify: true) or "always"
	// (every remote chart, whatever app.yaml says; needs ChartKeyring).
	ChartVerify string
	// InventoryNamespace holds the per-app inventories (what Outpost applied).
	InventoryNamespace string
	// Namespaces, when set, are the only namespaces the agent writes to and watches
	// (the namespaced RBAC profile); objects elsewhere or cluster-scoped fail clearly.
	Namespaces []string
	// LeaderElect enables leader election (one active agent per cluster).
	LeaderElect bool
	// LeaseNamespace and LeaseName name the Lease used for leader election.
	LeaseNamespace, LeaseName string
	// Identity names this replica in the Lease (default: hostname).
	Identity string
	// LeaseDuration is how long a leader's claim lasts without renewal; a standby takes
	// over within it after the leader dies.
	LeaseDuration time.Duration
	// ShutdownTimeout bounds the graceful shutdown (finish the apply, flush reports).
	ShutdownTimeout time.Duration
	// RESTConfig, when set, is used instead of Kubeconfig (embedding and tests; no flag).
	RESTConfig *rest.Config
	// TracerProvider, when set, receives the agent's spans instead of an OTLP exporter
	// set up from the OTEL_EXPORTER_OTLP_* variables (embedding and tests; no flag).
	TracerProvider trace.TracerProvider
}

// defaultCacheDir is outpost-agent under the user's cache directory ($XDG_CACHE_HOME
// or ~/.cache), never a shared directory such as /tmp where another local user could
// create it first; "" (then --cache-dir is required) when there is none.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "outpost-agent")
}

// PlainHTTPWarnings names each URL of the configuration that is plain HTTP to another
// host; Run logs them at start, and --require-tls refuses them.
func (c *Config) PlainHTTPWarnings() []string {
	var out []string
	type flagURL struct{ flag, url string }
	var urls []flagURL
	for _, h := range hubclient.SplitURLs(c.HubURL) {
		urls = append(urls, flagURL{"hub-url", h})
	}
	for _, u := range append(urls, flagURL{"git-url", c.GitURL}) {
		if netsec.PlainHTTP(u.url) {
			out = append(out, netsec.PlainHTTPMessage(u.flag, redactURL(u.url)))
		}
	}
	return out
}

// DefaultConfig returns the defaults, in one place.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		GitBranch:          "main",
		Interval:           5 * time.Minute,
		GitPollInterval:    time.Minute,
		Concurrency:        4,
		ApplyConcurrency:   8,
		ListenAddr:         ":8080",
		CacheDir:           defaultCacheDir(),
		LeaderElect:        true,
		InventoryNamespace: "outpost-system",
		LeaseNamespace:     "outpost-system",
		LeaseName:          "outpost-agent",
		Identity:           host,
		LeaseDuration:      15 * time.Second,
		ShutdownTimeout:    20 * time.Second,
		ChartVerify:        string(chart.VerifyIfRequired),
	}
}

// RegisterFlags binds the configuration to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ClusterName, "cluster", c.ClusterName, "this cluster's name in the GitOps repo (required)")
	fs.StringVar(&c.GitURL, "git-url", c.GitURL, "GitOps repository URL: https://, ssh://, user@host:path or file:// (required)")
	fs.StringVar(&c.GitBranch, "git-branch", c.GitBranch, "branch to follow")
	fs.StringVar(&c.GitUsername, "git-username", c.GitUsername, "HTTP basic-auth user for Git")
	fs.StringVar(&c.GitPasswordFile, "git-password-file", c.GitPasswordFile, "file holding the HTTP password or token for Git")
	fs.StringVar(&c.GitSSHKeyFile, "git-ssh-key-file", c.GitSSHKeyFile, "file holding the SSH private key for Git")
	fs.StringVar(&c.GitKnownHostsFile, "git-known-hosts-file", c.GitKnownHostsFile, "SSH known_hosts file for Git")
	fs.StringVar(&c.HubURL, "hub-url", c.HubURL, "hub base URL, or several hub replicas' URLs separated by commas (fail over in turn); empty runs standalone from Git")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "file holding this cluster's agent token (required with --hub-url)")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "full resync period (safety net)")
	fs.DurationVar(&c.GitPollInterval, "git-poll-interval", c.GitPollInterval, "how often to check whether the branch moved")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "apps synced at once")
	fs.IntVar(&c.ApplyConcurrency, "apply-concurrency", c.ApplyConcurrency, "objects of one app applied at once")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig path; empty uses the in-cluster config")
	fs.StringVar(&c.ListenAddr, "listen", c.ListenAddr, "address for /metrics, /healthz, /readyz; empty disables")
	fs.StringVar(&c.PprofAddr, "pprof-listen", c.PprofAddr, "address serving net/http/pprof profiles, unauthenticated (bind to loopback); empty disables")
	fs.BoolVar(&c.PprofAllowRemote, "pprof-allow-remote", c.PprofAllowRemote, "allow --pprof-listen on a non-loopback address (profiles have no authentication)")
	fs.BoolVar(&c.RequireTLS, "require-tls", c.RequireTLS, "refuse http:// URLs to other hosts instead of warning about them")
	fs.StringVar(&c.CacheDir, "cache-dir", c.CacheDir, "directory for the Git clone and rendered revisions")
	fs.StringVar(&c.ChartCredentialsFile, "chart-credentials-file", c.ChartCredentialsFile, "YAML file mapping Helm chart repository and OCI registry hosts to {username, password}")
	fs.StringSliceVar(&c.ChartPlainHTTPHosts, "chart-plain-http-hosts", c.ChartPlainHTTPHosts, "comma-separated OCI registry hosts reached over plain HTTP")
	fs.StringVar(&c.ChartKeyring, "chart-keyring", c.ChartKeyring, "PGP public keyring (binary, keybox or armored) whose keys must sign the provenance (.prov) of verified Helm charts")
	fs.StringVar(&c.ChartVerify, "chart-verify", c.ChartVerify, "which remote Helm charts must carry a valid provenance: if-required (apps with helm.verify: true) or always (every one)")
	fs.StringSliceVar(&c.Namespaces, "namespaces", c.Namespaces, "comma-separated namespaces the agent may write to and watch (namespaced RBAC profile); empty: the whole cluster")
	fs.StringVar(&c.InventoryNamespace, "inventory-namespace", c.InventoryNamespace, "namespace of the per-app inventories")
	fs.BoolVar(&c.LeaderElect, "leader-elect", c.LeaderElect, "elect one active agent per cluster with a Lease")
	fs.StringVar(&c.LeaseNamespace, "lease-namespace", c.LeaseNamespace, "namespace of the leader-election Lease")
	fs.StringVar(&c.LeaseName, "lease-name", c.LeaseName, "name of the leader-election Lease")
	fs.StringVar(&c.Identity, "identity", c.Identity, "this replica's identity in the Lease")
	fs.DurationVar(&c.LeaseDuration, "lease-duration", c.LeaseDuration, "leader lease duration")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "bound on graceful shutdown")
}

// EnvName is the environment variable of a flag: --git-url → OUTPOST_GIT_URL.
func EnvName(flag string) string { return flagenv.EnvName(flag) }

// ApplyEnv sets every flag not given on the command line from its OUTPOST_* variable,
// found with lookup (os.LookupEnv in production). A malformed value is an error naming
// the variable.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	return flagenv.Apply(fs, lookup)
}

// ConfigError is a bad configuration value, naming its flag and environment variable.
type ConfigError = flagenv.Error

func configErr(flag string, format string, args ...any) error {
	return flagenv.Errorf(flag, format, args...)
}

// scpLike matches user@host:path Git URLs.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*$|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.*$`)

// Validate checks the configuration and that every file it names is readable. The
// first problem is returned as a *ConfigError.
func (c *Config) Validate() error {
	if c.ClusterName == "" {
		return configErr("cluster", "required")
	}
	if errs := validation.IsDNS1123Label(c.ClusterName); len(errs) > 0 {
		return configErr("cluster", "%q is not a valid cluster name: %s", c.ClusterName, errs[0])
	}
	if err := validateGitURL(c.GitURL); err != nil {
		return configErr("git-url", "%v", err)
	}
	if c.GitBranch == "" || strings.ContainsAny(c.GitBranch, " \t\n~^:?*[\\") || strings.Contains(c.GitBranch, "..") {
		return configErr("git-branch", "%q is not a valid branch name", c.GitBranch)
	}
	for _, f := range []struct{ flag, path string }{
		{"git-password-file", c.GitPasswordFile}, {"git-ssh-key-file", c.GitSSHKeyFile},
		{"git-known-hosts-file", c.GitKnownHostsFile}, {"token-file", c.TokenFile},
	} {
		if err := flagenv.Readable(f.path); err != nil {
			return configErr(f.flag, "%v", err)
		}
	}
	if c.HubURL != "" {
		hubs := hubclient.SplitURLs(c.HubURL)
		if len(hubs) == 0 {
			return configErr("hub-url", "%q holds no URL", c.HubURL)
		}
		for _, h := range hubs {
			u, err := url.Parse(h)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return configErr("hub-url", "%q is not an http(s) URL", h)
			}
		}
		if c.TokenFile == "" {
			return configErr("token-file", "required with --hub-url")
		}
	}
	for _, d := range []struct {
		flag string
		d    time.Duration
	}{
		{"interval", c.Interval}, {"git-poll-interval", c.GitPollInterval},
		{"lease-duration", c.LeaseDuration}, {"shutdown-timeout", c.ShutdownTimeout},
	} {
		if d.d <= 0 {
			return configErr(d.flag, "must be positive, got %s", d.d)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return configErr("concurrency", "must be between 1 and 64, got %d", c.Concurrency)
	}
	if c.ApplyConcurrency < 1 || c.ApplyConcurrency > 256 {
		return configErr("apply-concurrency", "must be between 1 and 256, got %d", c.ApplyConcurrency)
	}
	if c.ListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return configErr("listen", "%v", err)
		}
	}
	if c.Kubeconfig != "" {
		if err := flagenv.Readable(c.Kubeconfig); err != nil {
			return configErr("kubeconfig", "%v", err)
		}
	}
	if c.LeaderElect {
		if errs := validation.IsDNS1123Label(c.LeaseNamespace); len(errs) > 0 {
			return configErr("lease-namespace", "%q: %s", c.LeaseNamespace, errs[0])
		}
		if errs := validation.IsDNS1123Subdomain(c.LeaseName); len(errs) > 0 {
			return configErr("lease-name", "%q: %s", c.LeaseName, errs[0])
		}
		if c.Identity == "" {
			return configErr("identity", "required with --leader-elect")
		}
	}
	for i, ns := range c.Namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return configErr("namespaces", "item %d %q: %s", i, ns, errs[0])
		}
	}
	if errs := validation.IsDNS1123Label(c.InventoryNamespace); len(errs) > 0 {
		return configErr("inventory-namespace", "%q: %s", c.InventoryNamespace, errs[0])
	}
	if c.PprofAddr != "" {
		if err := netsec.CheckDebugAddr(c.PprofAddr, c.PprofAllowRemote); err != nil {
			return configErr("pprof-listen", "%v", err)
		}
	}
	if c.RequireTLS {
		if w := c.PlainHTTPWarnings(); len(w) > 0 {
			return configErr("require-tls", "%s", w[0])
		}
	}
	policy, err := chart.ParseVerifyPolicy(c.ChartVerify)
	if err != nil {
		return configErr("chart-verify", "%v", err)
	}
	if c.ChartKeyring != "" {
		if _, err := chart.LoadKeyring(c.ChartKeyring); err != nil {
			return configErr("chart-keyring", "%v", err)
		}
	} else if policy == chart.VerifyAlways {
		return configErr("chart-keyring", "required with --chart-verify=always (the keys chart provenance files must be signed by)")
	}
	if c.CacheDir == "" {
		return configErr("cache-dir", "required: there is no user cache directory ($XDG_CACHE_HOME or $HOME) to default to")
	}
	if abs, err := filepath.Abs(c.CacheDir); err != nil {
		return configErr("cache-dir", "%v", err)
	} else if err := render.CheckRootPath(abs); err != nil {
		return configErr("cache-dir", "the agent renders revisions under it: %v", err)
	}
	return nil
}

func validateGitURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	if scpLike.MatchString(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw URL, which may hold a password: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("malformed URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https", "ssh", "git":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", redactURL(raw))
		}
	case "file":
		if u.Path == "" {
			return fmt.Errorf("%q has no path", raw)
		}
	default:
		return fmt.Errorf("%q: scheme must be https, http, ssh, git or file", redactURL(raw))
	}
	return nil
}

// redactURL hides any password in a URL, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
