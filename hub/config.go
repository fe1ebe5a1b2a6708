package hub

import (
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/outpost-gitops/outpost/internal/netsec"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/rollout"
	"github.com/outpost-gitops/outpost/internal/flagenv"
)

// Config is everything `outpost hub` needs. Every field but Listener and
// TracerProvider has a flag and an OUTPOST_* environment variable (the flag wins);
// defaults live in DefaultConfig.
type Config struct {
	// ListenAddr serves the API, the agents' Git, the dashboard, /metrics, /healthz
	// and /readyz.
	ListenAddr string
	// DataDir holds the status database (hub.db, unless Store is PostgreSQL) and the
	// repository (repo.git: the embedded repository, or the local clone of GitURL).
	// Created if missing; one hub process per directory (it locks hub.lock).
	DataDir string
	// Store, when set, is the PostgreSQL database of the status store
	// (postgres://user:password@host:5432/db?sslmode=verify-full), which several hub
	// replicas can share; empty keeps the SQLite file in DataDir. Prefer StoreFile:
	// the URL may hold a password.
	Store string
	// StoreFile holds the PostgreSQL connection string (URL or key=value pairs), e.g.
	// mounted from a Secret; the alternative to Store.
	StoreFile string
	// AdminTokensFile lists the admin bearer tokens, "name:token" per line (see
	// httpapi.ParseAdminTokens). Required.
	AdminTokensFile string
	// GitURL is the remote GitOps repository (http:// or https://); empty runs the
	// embedded repository, which the hub creates, seeds and serves to agents at
	// /git/<cluster>.git.
	GitURL string
	// GitBranch is the branch holding desired state.
	GitBranch string
	// GitUsername is the HTTP basic-auth user for GitURL (default "git" with a
	// password file).
	GitUsername string
	// GitPasswordFile holds the password or access token for GitURL.
	GitPasswordFile string
	// GitSeedDir seeds the embedded repository's first commit when DataDir has none.
	GitSeedDir string
	// GitPollInterval is how often the hub fetches GitURL when no webhook says it
	// changed (the safety net of webhooks); 0 disables polling. Unused when embedded.
	GitPollInterval time.Duration
	// WebhookSecretFile holds the secret of Git push webhooks (HMAC key for GitHub
	// and Gitea, token for GitLab); empty disables webhooks.
	WebhookSecretFile string
	// RolloutWebhookURL, when set, receives a signed POST whenever a rollout needs
	// a person: paused, rolling back, rolled back, aborted.
	RolloutWebhookURL string
	// RolloutWebhookSecretFile holds the HMAC-SHA256 key that signs those posts
	// (header X-Outpost-Signature-256); empty: unsigned.
	RolloutWebhookSecretFile string
	// RolloutInterval is how often active rollouts are evaluated when no report
	// arrives (reports wake the driver at once).
	RolloutInterval time.Duration
	// LongPollTimeout is how long an agent's long-poll is held without a change
	// (jittered by 10 %). Agents' clients must wait longer.
	LongPollTimeout time.Duration
	// MaxEventsPerCluster is how many events the store keeps per cluster.
	MaxEventsPerCluster int
	// TLSCertFile and TLSKeyFile, when both set, serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// DashboardPublic serves the dashboard without a token; by default it asks for an
	// admin token (the basic-auth password a browser prompts for).
	DashboardPublic bool
	// ShutdownTimeout bounds the graceful shutdown of the HTTP server.
	ShutdownTimeout time.Duration
	// PprofAddr, when set, serves Go's net/http/pprof profiles on this address
	// (e.g. 127.0.0.1:6060), apart from ListenAddr and without authentication:
	// bind it to loopback. Empty (the default) serves none.
	PprofAddr string
	// PprofAllowRemote lets PprofAddr be a non-loopback address.
	PprofAllowRemote bool
	// RequireTLS refuses a plain-HTTP GitURL to another host (otherwise warned about).
	RequireTLS bool
	// Listener, when set, is served instead of listening on ListenAddr (tests and
	// embedding; no flag). Run closes it.
	Listener net.Listener
	// TracerProvider, when set, receives the hub's spans instead of an OTLP exporter
	// set up from the OTEL_EXPORTER_OTLP_* variables (tests and embedding; no flag).
	TracerProvider trace.TracerProvider
}

// maxLongPollTimeout keeps the jittered hold under the agents' 60 s client timeout.
const maxLongPollTimeout = 50 * time.Second

// DefaultConfig returns the defaults, in one place.
func DefaultConfig() Config {
	return Config{
		ListenAddr:          ":8080",
		DataDir:             ".outpost/hub",
		GitBranch:           gitstore.DefaultBranch,
		GitPollInterval:     time.Minute,
		LongPollTimeout:     30 * time.Second,
		MaxEventsPerCluster: 1000,
		ShutdownTimeout:     20 * time.Second,
		RolloutInterval:     time.Second,
	}
}

// RegisterFlags binds the configuration to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ListenAddr, "listen", c.ListenAddr, "address of the API, Git, dashboard, /metrics and health endpoints")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the status database and the repository")
	fs.StringVar(&c.Store, "store", c.Store, "PostgreSQL URL of the status store (postgres://…), shared by hub replicas; empty: SQLite in --data-dir")
	fs.StringVar(&c.StoreFile, "store-file", c.StoreFile, "file holding the PostgreSQL connection string of the status store (instead of --store)")
	fs.StringVar(&c.AdminTokensFile, "admin-tokens-file", c.AdminTokensFile, `file of admin tokens, "name:token" per line (required)`)
	fs.StringVar(&c.GitURL, "git-url", c.GitURL, "remote GitOps repository (http or https); empty runs the embedded repository")
	fs.StringVar(&c.GitBranch, "git-branch", c.GitBranch, "branch holding desired state")
	fs.StringVar(&c.GitUsername, "git-username", c.GitUsername, "HTTP basic-auth user for --git-url")
	fs.StringVar(&c.GitPasswordFile, "git-password-file", c.GitPasswordFile, "file holding the password or token for --git-url")
	fs.StringVar(&c.GitSeedDir, "git-seed", c.GitSeedDir, "directory seeding the embedded repository's first commit")
	fs.DurationVar(&c.GitPollInterval, "git-poll-interval", c.GitPollInterval, "how often to fetch --git-url without a webhook; 0 disables")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", c.WebhookSecretFile, "file holding the Git webhook secret; empty disables webhooks")
	fs.StringVar(&c.RolloutWebhookURL, "rollout-webhook-url", c.RolloutWebhookURL, "URL receiving a signed POST when a rollout pauses, rolls back or is aborted; empty: none")
	fs.StringVar(&c.RolloutWebhookSecretFile, "rollout-webhook-secret-file", c.RolloutWebhookSecretFile, "file holding the HMAC key signing rollout webhooks; empty: unsigned")
	fs.DurationVar(&c.RolloutInterval, "rollout-interval", c.RolloutInterval, "how often active rollouts are evaluated without a report")
	fs.DurationVar(&c.LongPollTimeout, "long-poll-timeout", c.LongPollTimeout, "how long an agent's long-poll is held without a change")
	fs.IntVar(&c.MaxEventsPerCluster, "max-events-per-cluster", c.MaxEventsPerCluster, "events kept per cluster")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "TLS certificate; with --tls-key-file, serve HTTPS")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "TLS private key")
	fs.BoolVar(&c.DashboardPublic, "dashboard-public", c.DashboardPublic, "serve the dashboard without a token (it is read-only)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "bound on graceful shutdown")
	fs.StringVar(&c.PprofAddr, "pprof-listen", c.PprofAddr, "address serving net/http/pprof profiles, unauthenticated (bind to loopback); empty disables")
	fs.BoolVar(&c.PprofAllowRemote, "pprof-allow-remote", c.PprofAllowRemote, "allow --pprof-listen on a non-loopback address (profiles have no authentication)")
	fs.BoolVar(&c.RequireTLS, "require-tls", c.RequireTLS, "refuse http:// URLs to other hosts instead of warning about them")
}

// ConfigError is a bad configuration value, naming its flag and environment variable.
type ConfigError = flagenv.Error

// EnvName is the environment variable of a flag: --data-dir → OUTPOST_DATA_DIR.
func EnvName(flag string) string { return flagenv.EnvName(flag) }

func configErr(flag, format string, args ...any) error {
	return flagenv.Errorf(flag, format, args...)
}

// PlainHTTPWarnings names the remote Git URL when it is plain HTTP to another host;
// Run logs it at start, and --require-tls refuses it.
func (c *Config) PlainHTTPWarnings() []string {
	if netsec.PlainHTTP(c.GitURL) {
		return []string{netsec.PlainHTTPMessage("git-url", gitstore.RedactURL(c.GitURL))}
	}
	return nil
}

// Validate checks the configuration and that every file it names is readable. The
// first problem is returned as a *ConfigError.
func (c *Config) Validate() error {
	if c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			return configErr("listen", "%v", err)
		}
	}
	if c.DataDir == "" {
		return configErr("data-dir", "required")
	}
	if c.AdminTokensFile == "" {
		return configErr("admin-tokens-file", "required: a file of admin tokens, \"name:token\" per line")
	}
	if c.GitURL != "" {
		u, err := url.Parse(c.GitURL)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, which may hold a password
			}
			return configErr("git-url", "malformed URL: %v", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return configErr("git-url", "%q is not an http(s) URL", gitstore.RedactURL(c.GitURL))
		}
		if c.GitSeedDir != "" {
			return configErr("git-seed", "seeds only the embedded repository: leave it empty with --git-url")
		}
	} else if c.GitPasswordFile != "" {
		return configErr("git-password-file", "is for --git-url: the embedded repository needs no password")
	}
	if c.Store != "" {
		if c.StoreFile != "" {
			return configErr("store", "--store and --store-file go one at a time")
		}
		if !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
			return configErr("store", "want a postgres:// URL (empty keeps SQLite in --data-dir)")
		}
	}
	if c.GitBranch == "" || strings.ContainsAny(c.GitBranch, " \t\n~^:?*[\\") || strings.Contains(c.GitBranch, "..") {
		return configErr("git-branch", "%q is not a valid branch name", c.GitBranch)
	}
	for _, f := range []struct{ flag, path string }{
		{"admin-tokens-file", c.AdminTokensFile}, {"git-password-file", c.GitPasswordFile}, {"store-file", c.StoreFile},
		{"webhook-secret-file", c.WebhookSecretFile}, {"tls-cert-file", c.TLSCertFile}, {"tls-key-file", c.TLSKeyFile},
		{"rollout-webhook-secret-file", c.RolloutWebhookSecretFile},
	} {
		if err := flagenv.Readable(f.path); err != nil {
			return configErr(f.flag, "%v", err)
		}
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
	if c.GitSeedDir != "" {
		if fi, err := os.Stat(c.GitSeedDir); err != nil || !fi.IsDir() {
			return configErr("git-seed", "%q is not a directory", c.GitSeedDir)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return configErr("tls-cert-file", "--tls-cert-file and --tls-key-file go together")
	}
	if c.GitPollInterval < 0 {
		return configErr("git-poll-interval", "must not be negative, got %s", c.GitPollInterval)
	}
	for _, d := range []struct {
		flag string
		d    time.Duration
	}{{"long-poll-timeout", c.LongPollTimeout}, {"shutdown-timeout", c.ShutdownTimeout}, {"rollout-interval", c.RolloutInterval}} {
		if d.d <= 0 {
			return configErr(d.flag, "must be positive, got %s", d.d)
		}
	}
	if c.LongPollTimeout > maxLongPollTimeout {
		return configErr("long-poll-timeout", "at most %s, got %s: agents' clients give up after 60 s", maxLongPollTimeout, c.LongPollTimeout)
	}
	if c.RolloutWebhookURL != "" {
		if err := rollout.CheckWebhookURL(c.RolloutWebhookURL); err != nil {
			return configErr("rollout-webhook-url", "%v", err)
		}
	} else if c.RolloutWebhookSecretFile != "" {
		return configErr("rollout-webhook-secret-file", "signs --rollout-webhook-url posts: set that too, or leave this empty")
	}
	if c.MaxEventsPerCluster < 1 {
		return configErr("max-events-per-cluster", "must be at least 1, got %d", c.MaxEventsPerCluster)
	}
	return nil
}

// readSecret reads a secret file, trimmed; its content never appears in errors.
func readSecret(flag, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", configErr(flag, "%v", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", configErr(flag, "%s is empty", path)
	}
	return s, nil
}
