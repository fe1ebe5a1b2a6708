package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/internal/slots"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Defaults of Config, in one place.
const (
	// DefaultLongPollHold is Config.LongPollHold when unset: notify's default timeout
	// of 30 s with its default jitter of 10 %.
	DefaultLongPollHold = 33 * time.Second
	// DefaultRequestTimeout is Config.RequestTimeout when unset.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultGitTimeout is Config.GitTimeout when unset.
	DefaultGitTimeout = 10 * time.Minute
	// DefaultSummaryTTL is Config.SummaryTTL when unset.
	DefaultSummaryTTL = time.Second
	// MaxWebhookBytes is the largest webhook body read: push payloads list commits.
	MaxWebhookBytes = 5 << 20
	// longPollMargin is how much longer than the hold a long-poll may take to write.
	longPollMargin = 15 * time.Second
	// DefaultMaxWebhooks is Config.MaxWebhooks when unset.
	DefaultMaxWebhooks = 4
	// DefaultMaxLongPollsPerCluster is Config.MaxLongPollsPerCluster when unset: one
	// agent holds one; leader-election standbys and restarts may overlap briefly.
	DefaultMaxLongPollsPerCluster = 4
	// DefaultMaxStreamsPerToken is Config.MaxStreamsPerToken when unset: one per open
	// dashboard tab (browsers open at most 6 connections per host anyway).
	DefaultMaxStreamsPerToken = 8
	// DefaultMaxPublicStreams is Config.MaxPublicStreams when unset.
	DefaultMaxPublicStreams = 64
	// DefaultAuthFailureBurst is Config.AuthFailureBurst when unset.
	DefaultAuthFailureBurst = 20
	// DefaultAuthFailureRefill is Config.AuthFailureRefill when unset.
	DefaultAuthFailureRefill = time.Second
	// DefaultUndesiredAppRetention is Config.UndesiredAppRetention when unset.
	DefaultUndesiredAppRetention = time.Hour
	// DefaultStaleAppRetention is Config.StaleAppRetention when unset.
	DefaultStaleAppRetention = 7 * 24 * time.Hour
	// forgetEvery is how often, at most, the reports of one cluster trigger ForgetApps.
	forgetEvery = time.Minute
	// tooManyRetryAfter is the Retry-After of a 429, in seconds.
	tooManyRetryAfter = "5"
)

// Store is the status store the API reads and writes; *store.SQLite is one.
type Store interface {
	store.Registry
	store.Statuses
}

// DesiredReader reads the desired state in Git; *gitstore.Store is one.
type DesiredReader interface {
	// Head returns the current revision.
	Head() string
	// Snapshot returns the desired state at rev ("" for the head).
	Snapshot(ctx context.Context, rev string) (*gitstore.Snapshot, error)
	// History lists the commits that changed a cluster (or one app on it).
	History(ctx context.Context, cluster, app string, limit int) ([]gitstore.HistoryEntry, error)
}

// VersionWriter changes an app's version on a cluster with one commit; *gitstore.Store
// is one.
type VersionWriter interface {
	// SetVersion sets app's version on cluster.
	SetVersion(ctx context.Context, cluster, app, version string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)
	// Unset removes app from cluster.
	Unset(ctx context.Context, cluster, app string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)
	// Rollback sets app on cluster back to its previous version.
	Rollback(ctx context.Context, cluster, app string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)
	// Bulk changes app on every selected cluster in one commit.
	Bulk(ctx context.Context, req gitstore.BulkRequest, author gitstore.Author) (*gitstore.BulkResult, error)
}

// ClusterWriter adds and removes cluster directories with one commit; *gitstore.Store
// is one.
type ClusterWriter interface {
	// AddCluster creates clusters/<cluster>/.
	AddCluster(ctx context.Context, cluster string, labels map[string]string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)
	// RemoveCluster deletes clusters/<cluster>/.
	RemoveCluster(ctx context.Context, cluster string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)
}

// Refresher fetches the remote repository; *gitstore.Store is one.
type Refresher interface {
	// Refresh fetches and returns the old and new head.
	Refresh(ctx context.Context) (oldRev, newRev string, err error)
}

// Desired is everything the API does with Git.
type Desired interface {
	DesiredReader
	VersionWriter
	ClusterWriter
	Refresher
}

// Waiter is the long-poll side of the notifier; *notify.Notifier is one.
type Waiter interface {
	// Wait answers a cluster's long-poll.
	Wait(ctx context.Context, cluster, since string) (apiv1.DesiredRevision, error)
	// Forget drops a deleted cluster's state.
	Forget(cluster string)
	// Waiting returns the number of long-polls held now.
	Waiting() int
}

// Config configures the API. Store, Git, Notifier and Admins are required.
type Config struct {
	// Store is the status store and cluster registry.
	Store Store
	// Git is the desired state.
	Git Desired
	// Notifier answers the agents' long-polls; a Publisher keeps it at the Git head.
	Notifier Waiter
	// Admins are the admin tokens.
	Admins *AdminTokens
	// WebhookSecret verifies Git push webhooks; empty disables them (404).
	WebhookSecret []byte
	// Branch is the branch holding desired state; webhooks of pushes to other refs
	// are ignored. Default gitstore.DefaultBranch.
	Branch string
	// Rollouts runs rollouts (hub/rollout's Driver); nil: the rollout routes answer
	// 404 and manual writes are never held.
	Rollouts Rollouts
	// GitServer serves the repository to agents at /git/<cluster>.git (internal/gitserve,
	// configured without its own authorization: the API authorizes); nil: 404.
	GitServer http.Handler
	// Dashboard builds the dashboard from the API's read model (hub/web's New); it
	// serves GET / and every GET path outside the API. Nil: a plain page at /.
	Dashboard func(src ReadModel) (http.Handler, error)
	// DashboardPublic serves the dashboard without a token. By default it takes an
	// admin token, as the basic-auth password (browsers prompt for it) or a bearer
	// token.
	DashboardPublic bool
	// Metrics serves GET /metrics; nil: 404.
	Metrics http.Handler
	// Ready answers /readyz: nil when the hub can serve; nil func: always ready.
	Ready func(ctx context.Context) error
	// Meter creates the API's instruments; nil: no metrics.
	Meter metric.Meter
	// Tracer creates a span per request; nil: no tracing.
	Tracer trace.Tracer
	// LongPollHold is the longest the notifier holds a long-poll (its timeout with
	// jitter); the long-poll's write deadline is extended past it. Default
	// DefaultLongPollHold.
	LongPollHold time.Duration
	// RequestTimeout bounds every request but long-polls and Git fetches. Default
	// DefaultRequestTimeout. The HTTP server's WriteTimeout should exceed it.
	RequestTimeout time.Duration
	// GitTimeout bounds a Git fetch from /git/ (building and sending a pack). Default
	// DefaultGitTimeout.
	GitTimeout time.Duration
	// SummaryTTL is how long the cluster and app summaries of the cluster list and
	// the matrix are cached. Default DefaultSummaryTTL; negative: not cached.
	SummaryTTL time.Duration
	// MaxWebhooks bounds the webhooks handled at once (each may hold a 5 MiB body);
	// more are answered 429. Default DefaultMaxWebhooks.
	MaxWebhooks int
	// MaxLongPollsPerCluster bounds the long-polls held at once with one cluster's
	// agent token; more are answered 429. Default DefaultMaxLongPollsPerCluster.
	MaxLongPollsPerCluster int
	// MaxStreamsPerToken bounds the dashboard event streams open at once with one
	// admin token; more are answered 429. Default DefaultMaxStreamsPerToken.
	MaxStreamsPerToken int
	// MaxPublicStreams bounds the dashboard event streams open at once without a token
	// (DashboardPublic), all callers together. Default DefaultMaxPublicStreams.
	MaxPublicStreams int
	// AuthFailureBurst is how many failed authentications (an unknown token, a wrong
	// webhook signature) one source address may make at once; after that it gets one
	// more every AuthFailureRefill, and its requests are answered 429 until then.
	// Default DefaultAuthFailureBurst; negative: no limit.
	AuthFailureBurst int
	// AuthFailureRefill is how often a source address regains one failed
	// authentication. Default DefaultAuthFailureRefill.
	AuthFailureRefill time.Duration
	// UndesiredAppRetention is how long the status of an app that is not in its
	// cluster's apps.yaml is kept after its last report. Default
	// DefaultUndesiredAppRetention.
	UndesiredAppRetention time.Duration
	// StaleAppRetention is how long the status of any app is kept after its last
	// report. Default DefaultStaleAppRetention.
	StaleAppRetention time.Duration
	// Logger receives the API's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// withDefaults fills the unset fields of c, or names the missing required one.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Store == nil:
		return c, errors.New("httpapi config: Store is required")
	case c.Git == nil:
		return c, errors.New("httpapi config: Git is required")
	case c.Notifier == nil:
		return c, errors.New("httpapi config: Notifier is required")
	case c.Admins == nil || c.Admins.Len() == 0:
		return c, errors.New("httpapi config: Admins holds no token")
	}
	if c.Branch == "" {
		c.Branch = gitstore.DefaultBranch
	}
	if c.LongPollHold <= 0 {
		c.LongPollHold = DefaultLongPollHold
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.GitTimeout <= 0 {
		c.GitTimeout = DefaultGitTimeout
	}
	if c.SummaryTTL == 0 {
		c.SummaryTTL = DefaultSummaryTTL
	}
	if c.MaxWebhooks <= 0 {
		c.MaxWebhooks = DefaultMaxWebhooks
	}
	if c.MaxLongPollsPerCluster <= 0 {
		c.MaxLongPollsPerCluster = DefaultMaxLongPollsPerCluster
	}
	if c.MaxStreamsPerToken <= 0 {
		c.MaxStreamsPerToken = DefaultMaxStreamsPerToken
	}
	if c.MaxPublicStreams <= 0 {
		c.MaxPublicStreams = DefaultMaxPublicStreams
	}
	if c.AuthFailureBurst == 0 {
		c.AuthFailureBurst = DefaultAuthFailureBurst
	}
	if c.AuthFailureRefill <= 0 {
		c.AuthFailureRefill = DefaultAuthFailureRefill
	}
	if c.UndesiredAppRetention <= 0 {
		c.UndesiredAppRetention = DefaultUndesiredAppRetention
	}
	if c.StaleAppRetention <= 0 {
		c.StaleAppRetention = DefaultStaleAppRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Meter == nil {
		c.Meter = metricnoop.NewMeterProvider().Meter("outpost-hub")
	}
	if c.Tracer == nil {
		c.Tracer = tracenoop.NewTracerProvider().Tracer("outpost-hub")
	}
	return c, nil
}

// ReadModel is what the dashboard reads, as the REST API answers it: *API is one,
// and hub/web's Source has the same methods.
type ReadModel interface {
	// Matrix returns every app × every cluster.
	Matrix(ctx context.Context) (*apiv1.Matrix, error)
	// ClusterStatus returns a cluster's status.
	ClusterStatus(ctx context.Context, cluster string) (*apiv1.ClusterStatus, error)
	// Events returns at most limit events, newest first, of one cluster or of all.
	Events(ctx context.Context, cluster string, limit int) (*apiv1.EventList, error)
}

var _ ReadModel = (*API)(nil)

// API is the hub's HTTP handler. Create it with New.
type API struct {
	cfg       Config
	log       *slog.Logger
	mux       *http.ServeMux
	routes    []Route
	apiRoutes map[string]bool // mux patterns of the /api/ routes
	metrics   *metrics
	// prop reads the trace context of requests (the agent's format).
	prop      propagation.TextMapPropagator
	summaries *summaryCache
	dashboard http.Handler // nil: a plain page

	webhooks   chan struct{} // one per webhook being handled
	deliveries *replayMemory // webhook deliveries handled
	longPolls  *slots.Slots  // per cluster
	streams    *slots.Slots  // dashboard event streams, per admin token
	anonymous  *slots.Slots  // dashboard event streams without a token (one key)
	authFails  *authLimiter  // nil: no limit
	forgotten  *forgetClock  // when each cluster's stale apps were last forgotten

	diffs chan struct{} // one token per diff being rendered (maxDiffs)

	// draining ends when the hub shuts down: held long-polls answer at once.
	draining context.Context
	drain    context.CancelFunc
}

// handlerFunc serves a request from an authenticated caller; an error becomes the
// ErrorResponse.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

// Route is one route the API serves.
type Route struct {
	// Method is the HTTP method (GET routes also answer HEAD).
	Method string
	// Path is the path pattern, in http.ServeMux syntax, which is also OpenAPI's
	// path syntax: /api/v1/clusters/{cluster}.
	Path string

	access  access
	handle  handlerFunc
	timeout time.Duration // 0: Config.RequestTimeout; negative: the handler's own
}

// pattern is the route's http.ServeMux pattern.
func (rt Route) pattern() string { return rt.Method + " " + rt.Path }

// New returns the API for cfg.
func New(cfg Config) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), apiRoutes: map[string]bool{}, prop: telemetry.Propagator()}
	a.draining, a.drain = context.WithCancel(context.Background())
	a.webhooks = make(chan struct{}, cfg.MaxWebhooks)
	a.diffs = make(chan struct{}, maxDiffs)
	a.deliveries = newReplayMemory(webhookMemory)
	a.forgotten = &forgetClock{last: map[string]time.Time{}}
	a.longPolls = slots.New(cfg.MaxLongPollsPerCluster)
	a.streams = slots.New(cfg.MaxStreamsPerToken)
	a.anonymous = slots.New(cfg.MaxPublicStreams)
	if cfg.AuthFailureBurst > 0 {
		a.authFails = newAuthLimiter(cfg.AuthFailureBurst, cfg.AuthFailureRefill, cfg.Now)
	}
	a.summaries = newSummaryCache(cfg.Store, cfg.SummaryTTL, cfg.Now)
	if a.metrics, err = newMetrics(cfg.Meter, cfg.Notifier); err != nil {
		return nil, err
	}
	if cfg.Dashboard != nil {
		if a.dashboard, err = cfg.Dashboard(a); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
	}
	a.routes = a.routeTable()
	for _, rt := range a.routes {
		a.mux.Handle(rt.pattern(), a.wrap(rt))
		if strings.HasPrefix(rt.Path, "/api/") {
			a.apiRoutes[rt.pattern()] = true
		}
	}
	return a, nil
}

// routeTable declares every route: method, path, who may call it, the handler.
func (a *API) routeTable() []Route {
	dashboard := adminRead
	if a.cfg.DashboardPublic {
		dashboard = public
	}
	rts := []Route{
		{Method: http.MethodGet, Path: "/api/v1/clusters", access: adminOnly, handle: a.listClusters},
		{Method: http.MethodPost, Path: "/api/v1/clusters", access: adminOnly, handle: a.registerCluster},
		{Method: http.MethodGet, Path: "/api/v1/clusters/{cluster}", access: adminOnly, handle: a.getCluster},
		{Method: http.MethodDelete, Path: "/api/v1/clusters/{cluster}", access: adminOnly, handle: a.deleteCluster},
		{Method: http.MethodPost, Path: "/api/v1/clusters/{cluster}/token", access: adminOnly, handle: a.rotateToken},
		{Method: http.MethodGet, Path: "/api/v1/clusters/{cluster}/status", access: adminOnly, handle: a.clusterStatus},
		{Method: http.MethodGet, Path: "/api/v1/clusters/{cluster}/history", access: adminOnly, handle: a.history},
		{Method: http.MethodPut, Path: "/api/v1/clusters/{cluster}/apps/{app}", access: adminOnly, handle: a.setVersion},
		{Method: http.MethodDelete, Path: "/api/v1/clusters/{cluster}/apps/{app}", access: adminOnly, handle: a.unsetVersion},
		{Method: http.MethodPost, Path: "/api/v1/clusters/{cluster}/apps/{app}/rollback", access: adminOnly, handle: a.rollback},
		{Method: http.MethodPost, Path: "/api/v1/apps/{app}/bulk", access: adminOnly, handle: a.bulk},
		{Method: http.MethodPost, Path: apiv1.RolloutsPath, access: adminOnly, handle: a.startRollout},
		{Method: http.MethodGet, Path: apiv1.RolloutsPath, access: adminOnly, handle: a.listRollouts},
		{Method: http.MethodGet, Path: apiv1.RolloutsPath + "/{id}", access: adminOnly, handle: a.getRollout},
		{Method: http.MethodPost, Path: apiv1.RolloutsPath + "/{id}/{action}", access: adminOnly, handle: a.actOnRollout},
		{Method: http.MethodGet, Path: "/api/v1/matrix", access: adminOnly, handle: a.matrix},
		{Method: http.MethodGet, Path: "/api/v1/diff", access: adminOnly, handle: a.diff},
		{Method: http.MethodGet, Path: "/api/v1/events", access: adminOnly, handle: a.events},
		{Method: http.MethodPost, Path: apiv1.ReportPath, access: agentOnly, handle: a.report},
		{Method: http.MethodGet, Path: apiv1.DesiredPath, access: agentOnly, handle: a.desired, timeout: -1},
		{Method: http.MethodPost, Path: WebhookPath, access: signed, handle: a.webhook},
		{Method: http.MethodGet, Path: "/git/{repo}/info/refs", access: gitRead, handle: a.serveGit, timeout: -1},
		{Method: http.MethodPost, Path: "/git/{repo}/git-upload-pack", access: gitRead, handle: a.serveGit, timeout: -1},
		{Method: http.MethodGet, Path: "/healthz", access: public, handle: a.healthz},
		{Method: http.MethodGet, Path: "/readyz", access: public, handle: a.readyz},
		{Method: http.MethodGet, Path: "/metrics", access: public, handle: a.serveMetrics},
		{Method: http.MethodGet, Path: "/", access: dashboard, handle: a.serveDashboard, timeout: -1},
	}
	return rts
}

// Routes returns every route the API serves, for documentation and its tests.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

// Drain makes held long-polls answer now and new ones answer at once with 503, so
// that the HTTP server can shut down without waiting for their hold time.
func (a *API) Drain() { a.drain() }

// wrap authenticates the caller, bounds the request's time and runs the handler.
func (a *API) wrap(rt Route) http.Handler {
	timeout := rt.timeout
	if timeout == 0 {
		timeout = a.cfg.RequestTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		c, err := a.authenticate(r, rt.access)
		if err == nil {
			err = rt.handle(w, r, c)
		}
		if err != nil {
			if (rt.access == gitRead || rt.access == adminRead) && w.Header().Get("WWW-Authenticate") == "" {
				// Git clients and browsers send credentials only after a Basic challenge.
				w.Header().Set("WWW-Authenticate", `Basic realm="outpost", charset="UTF-8"`)
			}
			a.writeError(w, r, err)
		}
	})
}

// ServeHTTP routes the request, with a span and metrics per route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := a.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	_, pattern := a.mux.Handler(r)
	isAPI := strings.HasPrefix(r.URL.Path, "/api/")
	// An unclean API path is refused, not redirected (the mux would redirect it and
	// give the pattern of the cleaned path).
	routed := pattern != "" && (!isAPI || (a.apiRoutes[pattern] && cleanPath(r.URL.EscapedPath())))
	route := pattern
	if !routed {
		route = "unmatched"
	}
	method := methodLabel(r.Method)
	attrs := []attribute.KeyValue{attribute.String("http.request.method", method), attribute.String("http.route", route)}
	if method != r.Method {
		attrs = append(attrs, attribute.String("http.request.method_original", truncate(r.Method)))
	}
	ctx, span := a.cfg.Tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	defer span.End()
	sw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(ctx)
	switch {
	case routed:
		a.mux.ServeHTTP(sw, r)
	case isAPI:
		a.unrouted(sw, r)
	default:
		a.mux.ServeHTTP(sw, r) // the mux's own redirects and 404/405 outside the API
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	a.metrics.request(ctx, route, method, status, time.Since(start))
}

// unrouted answers an API request no route matched: a path with a '.', '..' or
// empty segment is a 400 naming the parameter at that place; a path served for other
// methods is a 405; anything else a 404.
func (a *API) unrouted(w http.ResponseWriter, r *http.Request) {
	if err := a.uncleanPath(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := a.mux.Handler(probe); a.apiRoutes[p] {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		a.writeError(w, r, newError(apiv1.CodeMethodNotAllowed, "", "%s is not served for %s (allowed: %s)", r.URL.Path, r.Method, strings.Join(allow, ", ")))
		return
	}
	a.writeError(w, r, newError(apiv1.CodeNotFound, "", "no route %s %s", r.Method, r.URL.Path))
}

// cleanPath tells whether an escaped path has no '.', '..' or empty segment (but a
// trailing slash).
func cleanPath(p string) bool {
	segs := strings.Split(p, "/")
	for i := 1; i < len(segs); i++ {
		if s := segs[i]; s == "." || s == ".." || (s == "" && i < len(segs)-1) {
			return false
		}
	}
	return true
}

// uncleanPath finds a '.', '..' or empty segment in the request's path (which the
// mux would redirect away from) and returns a 400 naming the route parameter at its
// place, or nil.
func (a *API) uncleanPath(r *http.Request) error {
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i := 1; i < len(segs); i++ {
		s := segs[i]
		if s != "." && s != ".." && !(s == "" && i < len(segs)-1) {
			continue
		}
		probe := r.Clone(r.Context())
		fixed := slices.Clone(segs)
		fixed[i] = "x"
		probe.URL.Path = strings.Join(fixed, "/")
		probe.URL.RawPath = ""
		field := ""
		if _, p := a.mux.Handler(probe); a.apiRoutes[p] {
			_, path, _ := strings.Cut(p, " ")
			if ps := strings.Split(path, "/"); i < len(ps) && strings.HasPrefix(ps[i], "{") {
				field = strings.Trim(ps[i], "{}")
			}
		}
		if field == "" {
			return newError(apiv1.CodeNotFound, "", "no route %s %s", r.Method, r.URL.Path)
		}
		if s == "" {
			return errInvalid(field, "must not be empty")
		}
		return errInvalid(field, "%q is not a valid name: names are never paths", s)
	}
	return nil
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush flushes the response (server-sent events of the dashboard).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
	return nil
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if a.draining.Err() != nil {
		return newError(apiv1.CodeUnavailable, "", "shutting down")
	}
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			return newError(apiv1.CodeUnavailable, "", "not ready: %v", err)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
	return nil
}

func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if a.cfg.Metrics == nil {
		return newError(apiv1.CodeNotFound, "", "metrics are not served")
	}
	a.cfg.Metrics.ServeHTTP(w, r)
	return nil
}

func (a *API) serveDashboard(w http.ResponseWriter, r *http.Request, c *caller) error {
	if r.URL.Path == "/events/stream" && a.dashboard != nil {
		// Each event stream holds a connection and polls the store: bounded per admin
		// token, and for all anonymous viewers of a public dashboard together.
		pool, key := a.streams, c.key
		if key == "" {
			pool, key = a.anonymous, "public"
		}
		if !pool.Acquire(key) {
			return tooMany("too many dashboard event streams are open with this token (or, without a token, in all)")
		}
		defer pool.Release(key)
	}
	if a.dashboard == nil {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("Outpost hub: the API is under /api/v1 (see docs/api.md).\n"))
			return nil
		}
		return newError(apiv1.CodeNotFound, "", "no page %s", r.URL.Path)
	}
	a.dashboard.ServeHTTP(w, r)
	return nil
}
