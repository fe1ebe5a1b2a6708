package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/ha"
	"github.com/outpost-gitops/outpost/hub/httpapi"
	"github.com/outpost-gitops/outpost/hub/notify"
	"github.com/outpost-gitops/outpost/hub/rollout"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/hub/web"
	"github.com/outpost-gitops/outpost/internal/gitserve"
	"github.com/outpost-gitops/outpost/internal/pprofserve"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Timeouts of the HTTP server, in one place. Long-polls and Git fetches extend their
// own write deadlines (see httpapi).
const (
	// readHeaderTimeout bounds reading a request's headers (slowloris).
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request, a 4 MiB report included.
	readTimeout = time.Minute
	// requestTimeout bounds the work of a request (httpapi.Config.RequestTimeout).
	requestTimeout = time.Minute
	// writeTimeout bounds a response; above requestTimeout so that a timed-out
	// request can still answer.
	writeTimeout = requestTimeout + 15*time.Second
	// idleTimeout closes idle keep-alive connections.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds a request's headers.
	maxHeaderBytes = 64 << 10
	// longPollJitter is notify's jitter of the hold time.
	longPollJitter = 0.1
)

// Files of DataDir.
const (
	// DatabaseFile is the status database in DataDir.
	DatabaseFile = "hub.db"
	// RepositoryDir is the repository in DataDir: embedded, or the clone of GitURL.
	RepositoryDir = "repo.git"
)

// Run runs the hub until ctx ends: it validates cfg, opens the status store and the
// repository in cfg.DataDir, keeps the long-poll notifier at the Git head, and serves
// the API, the agents' Git (embedded repository), /metrics, /healthz and /readyz on
// one listener. With a remote repository it fetches every cfg.GitPollInterval (and
// on webhooks). On shutdown it answers held long-polls, drains the server within
// cfg.ShutdownTimeout and closes the store. A *ConfigError is a bad configuration.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Listener != nil {
		defer cfg.Listener.Close() // on every path; closing it twice is harmless
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	admins, err := httpapi.LoadAdminTokens(cfg.AdminTokensFile)
	if err != nil {
		return &ConfigError{Flag: "admin-tokens-file", Env: EnvName("admin-tokens-file"), Err: err}
	}
	var secret, password string
	if cfg.WebhookSecretFile != "" {
		if secret, err = readSecret("webhook-secret-file", cfg.WebhookSecretFile); err != nil {
			return err
		}
	}
	if cfg.GitPasswordFile != "" {
		if password, err = readSecret("git-password-file", cfg.GitPasswordFile); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return configErr("data-dir", "%v", err)
	}
	tel, err := telemetry.Setup(ctx, "outpost-hub", os.Getenv, cfg.TracerProvider)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	for _, w := range cfg.PlainHTTPWarnings() {
		log.Warn(w)
	}
	if cfg.PprofAddr != "" {
		// Started first, so that opening (seeding) the repository can be profiled too.
		pp, err := pprofserve.Start(cfg.PprofAddr, log)
		if err != nil {
			return configErr("pprof-listen", "%v", err)
		}
		defer func() { _ = pp.Stop(context.WithoutCancel(ctx)) }()
	}

	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return configErr("data-dir", "%v", err)
	}
	defer unlock()
	dsn := cfg.Store
	if cfg.StoreFile != "" {
		if dsn, err = readSecret("store-file", cfg.StoreFile); err != nil {
			return err
		}
	}
	scfg := store.Config{MaxEventsPerCluster: cfg.MaxEventsPerCluster, Logger: log}
	if dsn != "" {
		scfg.DSN = dsn
	} else {
		scfg.Path = filepath.Join(cfg.DataDir, DatabaseFile)
	}
	st, err := store.Open(ctx, scfg)
	if err != nil {
		return fmt.Errorf("open the status store: %w", err)
	}
	defer st.Close()

	// Replicas on one PostgreSQL store share leases and Git heads; a hub alone needs
	// neither.
	var (
		singleton ha.Singleton = ha.Local{}
		bus       *ha.Bus
	)
	if dsn != "" {
		hcfg := ha.Config{DSN: dsn, Logger: log}
		leases, err := ha.NewLeases(hcfg)
		if err != nil {
			return err
		}
		singleton = leases
		if bus, err = ha.NewBus(hcfg); err != nil {
			return err
		}
		defer bus.Close()
		if cfg.GitURL == "" {
			// The embedded repository lives in this replica's DataDir: a second
			// replica would serve and write another repository.
			leaseCtx, release, held, err := leases.Hold(ctx, EmbeddedRepoLease)
			if err != nil {
				return fmt.Errorf("take the embedded repository's lease: %w", err)
			}
			if !held {
				return configErr("git-url", "another hub replica runs on this PostgreSQL store with its embedded repository: "+
					"the embedded repository allows one replica; several replicas need a remote repository (--git-url) shared by all")
			}
			defer release()
			parent := ctx
			var cancel context.CancelCauseFunc
			ctx, cancel = context.WithCancelCause(ctx)
			defer cancel(nil)
			context.AfterFunc(leaseCtx, func() {
				if parent.Err() == nil { // lost, not ended by the shutdown
					cancel(errLostEmbeddedLease)
				}
			})
		}
	}

	n, err := notify.New(notify.Config{Timeout: cfg.LongPollTimeout, Jitter: longPollJitter})
	if err != nil {
		return err
	}
	pub := httpapi.NewPublisher(n, log)
	heads := newHeadFanout(bus, log)
	gs, err := gitstore.Open(ctx, gitstore.Config{
		URL: cfg.GitURL, Branch: cfg.GitBranch, Username: cfg.GitUsername, Password: password,
		Dir: filepath.Join(cfg.DataDir, RepositoryDir), Seed: cfg.GitSeedDir,
		HeadChanged: func(oldRev, newRev string) {
			heads.moved(newRev) // first: the other replicas fetch while this one publishes
			pub.HeadChanged(oldRev, newRev)
		},
	}, log)
	if err != nil {
		return fmt.Errorf("open the GitOps repository: %w", err)
	}
	pub.Start(gs)
	if err := heads.start(ctx, gs); err != nil {
		return err
	}
	defer heads.stop()

	var webhook *rollout.Webhook
	if cfg.RolloutWebhookURL != "" {
		var key []byte
		if cfg.RolloutWebhookSecretFile != "" {
			k, err := readSecret("rollout-webhook-secret-file", cfg.RolloutWebhookSecretFile)
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		if webhook, err = rollout.NewWebhook(cfg.RolloutWebhookURL, key, log); err != nil {
			return configErr("rollout-webhook-url", "%v", err)
		}
	}
	rcfg := rollout.Config{Store: st, Git: gs, Interval: cfg.RolloutInterval, Meter: tel.Meter, Logger: log}
	if webhook != nil {
		rcfg.Notifier = webhook
	}
	driver, err := rollout.New(rcfg)
	if err != nil {
		return err
	}

	var gitServer http.Handler
	if cfg.GitURL == "" {
		// httpapi authorizes every request to /git/ before it reaches the handler.
		if gitServer, err = gitserve.New(gitserve.Config{Dir: gs.Dir(), Refs: gs, Authorize: gitserve.AllowAll, Key: gitserve.TokenKey, View: gitserve.ViewOf}, log); err != nil {
			return err
		}
	}
	api, err := httpapi.New(httpapi.Config{
		Store: st, Git: gs, Notifier: n, Admins: admins, Rollouts: driver, WebhookSecret: []byte(secret), Branch: cfg.GitBranch,
		GitServer: gitServer, Metrics: tel.Metrics, Meter: tel.Meter, Tracer: tel.Tracer,
		Dashboard: func(src httpapi.ReadModel) (http.Handler, error) {
			if cfg.DashboardPublic {
				// A public dashboard shows status only: the history and commit pages
				// (rendered manifests) and the rollout pages (who started which run,
				// its commits and reasons) need the admin token.
				src = readModelOnly{src}
			}
			return web.New(src, web.Options{Logger: log})
		},
		DashboardPublic: cfg.DashboardPublic,
		LongPollHold:    time.Duration(float64(cfg.LongPollTimeout) * (1 + longPollJitter)),
		RequestTimeout:  requestTimeout, Logger: log,
		Ready: func(context.Context) error {
			if gs.Head() == "" {
				return errors.New("the repository has no commit")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	err = serve(ctx, cfg, api, gs, singleton, log, func(ctx context.Context, wg *sync.WaitGroup) {
		// Rollouts are driven by one hub process at a time: the driver holds a
		// lease in the store (SQLite or PostgreSQL alike).
		wg.Go(func() { _ = driver.Run(ctx) })
		if webhook != nil {
			wg.Go(func() { webhook.Run(ctx) })
		}
	})
	if errors.Is(context.Cause(ctx), errLostEmbeddedLease) {
		return errors.Join(errLostEmbeddedLease, err)
	}
	return err
}

// EmbeddedRepoLease is the lease a hub on a PostgreSQL store holds while it runs the
// embedded repository, so that a second replica refuses to start.
const EmbeddedRepoLease = "embedded-repository"

// GitPollLease is the lease of the replica that polls the remote repository.
const GitPollLease = "git-poll"

// errLostEmbeddedLease stops a hub whose embedded repository's lease ended (its
// PostgreSQL session was lost): another replica may have started.
var errLostEmbeddedLease = errors.New("lost the embedded repository's lease (PostgreSQL session ended): stopping, so that one replica serves the repository")

// serve serves api until ctx ends, fetching the remote repository periodically
// (one replica at a time, by singleton's GitPollLease); background starts the
// other loops (rollouts), which end with its context.
func serve(ctx context.Context, cfg Config, api *httpapi.API, gs *gitstore.Store, singleton ha.Singleton, log *slog.Logger, background func(context.Context, *sync.WaitGroup)) error {
	l := cfg.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return configErr("listen", "%v", err)
		}
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	served := make(chan error, 1)
	go func() {
		if cfg.TLSCertFile != "" {
			served <- srv.ServeTLS(l, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			served <- srv.Serve(l)
		}
	}()
	repo := "embedded"
	if cfg.GitURL != "" {
		repo = gitstore.RedactURL(cfg.GitURL)
	}
	log.Info("hub serving", "addr", l.Addr().String(), "tls", cfg.TLSCertFile != "", "repository", repo,
		"branch", cfg.GitBranch, "head", gs.Head(), "dataDir", cfg.DataDir)

	pollCtx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if cfg.GitURL != "" && cfg.GitPollInterval > 0 {
		wg.Go(func() {
			_ = singleton.Run(pollCtx, GitPollLease, func(ctx context.Context) { pollGit(ctx, gs, cfg.GitPollInterval, log) })
		})
	}
	background(pollCtx, &wg)
	defer func() {
		stopPolling()
		wg.Wait()
	}()

	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("hub shutting down")
	api.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down the HTTP server: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}

// pollGit fetches the remote repository every interval: the safety net of webhooks.
// A fetch that moves the head publishes through the store's HeadChanged.
func pollGit(ctx context.Context, gs *gitstore.Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if old, cur, err := gs.Refresh(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("fetch the GitOps repository", "err", err)
			}
		} else if old != cur {
			log.Info("fetched new commits", "old", old, "new", cur)
		}
	}
}

// readModelOnly hides every method but the ReadModel's, so a public dashboard gets
// no history or commit pages (web.HistorySource) and no rollout pages
// (web.RolloutSource).
type readModelOnly struct{ httpapi.ReadModel }

// The hub's API gives its dashboard the history, commit and rollout pages.
var (
	_ web.HistorySource = (*httpapi.API)(nil)
	_ web.RolloutSource = (*httpapi.API)(nil)
)
