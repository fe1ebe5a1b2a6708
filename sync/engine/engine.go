package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// AppSyncer applies one app's desired objects and prunes what left it; *apply.Syncer
// is one.
type AppSyncer interface {
	SyncApp(ctx context.Context, app string, desired []*unstructured.Unstructured, opts apply.Options) (*apply.Result, error)
}

// HookRunner applies one hook object outside the inventory and waits until it is
// ready; *apply.Syncer is one.
type HookRunner interface {
	RunHook(ctx context.Context, app string, obj *unstructured.Unstructured, deletePolicies []string, timeout time.Duration) error
}

// Inventories lists the apps that have an inventory, so apps that left apps.yaml can be
// pruned and Helm charts of installed apps render as upgrades, and deletes an
// inventory once its app is gone; *inventory.Store is one.
type Inventories interface {
	Apps(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, app string) error
}

// Config configures an Engine.
type Config struct {
	// Syncer applies and prunes; required.
	Syncer AppSyncer
	// Health reads live objects for health checks (a watch cache or the API); required.
	Health health.Getter
	// Inventories lists apps with an inventory; nil disables pruning removed apps, and
	// Helm charts always render as installs (.Release.IsInstall).
	Inventories Inventories
	// IsNamespaced decides which objects get an app's default namespace; nil uses the
	// renderer's built-in list (pass a RESTMapper-backed function in production).
	IsNamespaced render.NamespacedFunc
	// Concurrency bounds the apps synced at once. Default 4.
	Concurrency int
	// Logger receives one line per app. Lines name no cluster: give a logger that
	// carries it (the agent's does), so that no line repeats the attribute. Default:
	// discard.
	Logger *slog.Logger
	// Namespaces, when set, are the only namespaces the engine may write to: an app
	// with an object elsewhere, or a cluster-scoped one, fails before any request
	// (for agents whose RBAC is limited to these namespaces).
	Namespaces []string
	// Tracer records a span per app with render and health children (apply adds
	// plan, apply and prune). Default: no tracing.
	Tracer trace.Tracer
	// Owner sets the ownership labels of rendered objects; pass the Owner the Syncer
	// applies with. Default object.DefaultOwner().
	Owner object.Owner
	// Render tunes the renderer beyond IsNamespaced and Owner (the cluster's
	// Capabilities and the chart fetcher for Helm apps).
	Render render.Options
	// Hooks runs Helm chart hooks; default the Syncer when it is a HookRunner. Nil:
	// an app with hooks fails.
	Hooks HookRunner
	// Capabilities, when set, returns the cluster's Kubernetes version and API
	// versions for Helm charts (render.Options KubeVersion and APIVersions). It is
	// called once per SyncCluster whose cluster has a Helm app; an error fails that
	// sync before anything is applied or pruned. The agent reads discovery.
	Capabilities func(ctx context.Context) (kubeVersion string, apiVersions []string, err error)
}

func (c Config) withDefaults() (Config, error) {
	if c.Syncer == nil || c.Health == nil {
		return c, errors.New("engine: Syncer and Health are required")
	}
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("outpost")
	}
	c.Owner = c.Owner.WithDefaults()
	if c.Hooks == nil {
		c.Hooks, _ = c.Syncer.(HookRunner)
	}
	return c, nil
}

// Engine syncs clusters.
type Engine struct {
	cfg   Config
	ns    namespaceClaims // which app creates a missing app namespace
	hooks hookMemory      // which renders' hooks already ran
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg}, nil
}

// Request says what to sync.
type Request struct {
	// Root is the directory holding the repository at Revision.
	Root string
	// Revision is the Git revision of Root, carried into the results.
	Revision string
	// Cluster is the cluster's name in the repository.
	Cluster string
	// Apps limits the sync to these apps (and never prunes removed apps); nil syncs
	// every app of the cluster.
	Apps map[string]bool
}

// SyncCluster makes the cluster match req. An error means the cluster's desired state
// could not be loaded (a bad apps.yaml, say): then nothing was applied or pruned.
// Otherwise per-app failures are in the result.
func (e *Engine) SyncCluster(ctx context.Context, req Request) (*ClusterResult, error) {
	start := time.Now()
	spec, err := repo.LoadDir(ctx, req.Root, req.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s at %s: %w", req.Cluster, short(req.Revision), err)
	}
	ropts := e.cfg.Render
	ropts.IsNamespaced, ropts.Owner = e.cfg.IsNamespaced, e.cfg.Owner
	if e.cfg.Capabilities != nil && hasHelmApp(spec) {
		if ropts.KubeVersion, ropts.APIVersions, err = e.cfg.Capabilities(ctx); err != nil {
			return nil, fmt.Errorf("cluster %s at %s: cluster capabilities for Helm charts: %w", req.Cluster, short(req.Revision), err)
		}
	}
	if e.cfg.Inventories != nil && hasHelmApp(spec) {
		apps, err := e.cfg.Inventories.Apps(ctx)
		if err != nil {
			// Rendering as installs would change the output of the charts that tell them
			// apart, and re-apply them: nothing is synced instead.
			return nil, fmt.Errorf("cluster %s at %s: inventories, for Helm charts' .Release.IsUpgrade: %w", req.Cluster, short(req.Revision), err)
		}
		ropts.Installed = func(app string) bool { return slices.Contains(apps, app) }
	}
	r, err := render.New(req.Root, ropts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s at %s: %w", req.Cluster, short(req.Revision), err)
	}
	res := &ClusterResult{Cluster: req.Cluster, Revision: req.Revision, Spec: spec}
	results := map[string]*AppResult{}
	dependedOn := dependedOn(spec)
	for _, level := range spec.Order {
		e.syncLevel(ctx, r, req, spec, level, dependedOn, results)
	}
	for _, a := range spec.Apps {
		if ar, ok := results[a.Name]; ok {
			res.Apps = append(res.Apps, *ar)
		}
	}
	if req.Apps == nil {
		res.Removed = e.pruneRemoved(ctx, req, spec)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// syncLevel syncs the apps of one dependency level in parallel, bounded.
func (e *Engine) syncLevel(ctx context.Context, r *render.Renderer, req Request, spec *repo.ClusterSpec, level []string, dependedOn map[string]bool, results map[string]*AppResult) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, e.cfg.Concurrency)
	for _, name := range level {
		if req.Apps != nil && !req.Apps[name] {
			continue
		}
		app := spec.App(name)
		mu.Lock()
		blocked := blockedBy(app, results, req.Apps)
		mu.Unlock()
		if blocked != "" {
			ar := newAppResult(req, app)
			ar.Phase = PhaseBlocked
			ar.Message = blocked
			mu.Lock()
			results[name] = ar
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ar := e.SyncApp(ctx, r, req, spec, app, dependedOn[name])
			mu.Lock()
			results[name] = ar
			mu.Unlock()
		})
	}
	wg.Wait()
}

// blockedBy says which dependency of app is not ready, or "". Dependencies outside a
// limited request are taken as ready (they were synced before).
func blockedBy(app *repo.App, results map[string]*AppResult, only map[string]bool) string {
	for _, d := range app.Config.DependsOn {
		dr, ok := results[d]
		if !ok {
			if only != nil {
				continue
			}
			return fmt.Sprintf("waiting for dependency %s", d)
		}
		if dr.Phase != PhaseSynced || dr.Health.Status != health.Current {
			return fmt.Sprintf("waiting for dependency %s (phase %s, health %s)", d, dr.Phase, dr.Health.Status)
		}
	}
	return ""
}

func dependedOn(spec *repo.ClusterSpec) map[string]bool {
	out := map[string]bool{}
	for _, a := range spec.Apps {
		for _, d := range a.Config.DependsOn {
			out[d] = true
		}
	}
	return out
}

// SyncApp renders, applies, prunes and checks the health of one app. When other apps
// depend on it, it waits for health up to the app's health timeout; otherwise it
// checks health once and returns.
func (e *Engine) SyncApp(ctx context.Context, r *render.Renderer, req Request, spec *repo.ClusterSpec, app *repo.App, waitHealth bool) *AppResult {
	ctx, span := e.cfg.Tracer.Start(ctx, "app", trace.WithAttributes(attribute.String("app", app.Name), attribute.String("version", app.Version)))
	defer span.End()
	ar := newAppResult(req, app)
	t := time.Now()
	rctx, rspan := e.cfg.Tracer.Start(ctx, "render")
	rendered, err := r.Render(rctx, spec, app)
	rspan.End()
	ar.Durations.Render = time.Since(t)
	if err != nil {
		return ar.fail(StageRender, err)
	}
	ar.Digest = rendered.Digest
	objs, release, err := e.withAppNamespace(ctx, app, rendered.Objects)
	defer release()
	if err != nil {
		return ar.fail(StageApply, err)
	}
	ar.Objects = objs
	isNamespaced := e.cfg.IsNamespaced
	if isNamespaced == nil {
		isNamespaced = render.BuiltinNamespaced(objs)
	}
	if err := checkNamespaces(objs, e.cfg.Namespaces, isNamespaced); err != nil {
		return ar.fail(StageApply, err)
	}
	pre, post := hooksOf(rendered.Hooks)
	if err := checkNamespaces(hookObjects(rendered.Hooks), e.cfg.Namespaces, isNamespaced); err != nil {
		return ar.fail(StageHooks, err)
	}
	if len(pre) > 0 && !e.hooks.ran(app.Name, rendered.Digest, render.HookPre) {
		t = time.Now()
		err := e.runHooks(ctx, app, namespacesOf(objs), pre)
		ar.Durations.Hooks += time.Since(t)
		if err != nil {
			return ar.fail(StageHooks, err)
		}
		e.hooks.done(app.Name, rendered.Digest, render.HookPre)
	}
	runPost := len(post) > 0 && !e.hooks.ran(app.Name, rendered.Digest, render.HookPost)

	t = time.Now()
	applied, err := e.cfg.Syncer.SyncApp(ctx, app.Name, objs, apply.OptionsFor(app.Config))
	ar.Durations.Apply = time.Since(t)
	release()
	ar.Apply = applied
	if err != nil {
		return ar.fail(StageApply, err)
	}

	t = time.Now()
	hctx, hspan := e.cfg.Tracer.Start(ctx, "health")
	ar.Health, err = e.health(hctx, app, objs, waitHealth || runPost)
	hspan.End()
	ar.Durations.Health = time.Since(t)
	if err != nil {
		return ar.fail(StageHealth, err)
	}
	if runPost && ar.Health.Status == health.Current {
		t = time.Now()
		err := e.runHooks(ctx, app, nil, post)
		ar.Durations.Hooks += time.Since(t)
		if err != nil {
			return ar.fail(StageHooks, err)
		}
		e.hooks.done(app.Name, rendered.Digest, render.HookPost)
	}
	ar.Phase = PhaseSynced
	ar.SyncedAt = time.Now()
	e.cfg.Logger.Info("app synced", "app", app.Name, "version", app.Version,
		"revision", short(req.Revision), "health", ar.Health.Status, "render", ar.Durations.Render, "apply", ar.Durations.Apply)
	return ar
}

func (e *Engine) health(ctx context.Context, app *repo.App, objs []*unstructured.Unstructured, wait bool) (health.AppHealth, error) {
	refs := object.RefsOf(objs)
	if wait {
		return health.Wait(ctx, e.cfg.Health, refs, health.WaitOptions{Timeout: app.Config.HealthTimeout.Duration, Logger: e.cfg.Logger})
	}
	return health.Check(ctx, e.cfg.Health, refs)
}

// pruneRemoved prunes every app that has an inventory but is no longer listed for the
// cluster (its app.yaml, if still in the repository, may keep its objects with
// prune: false).
func (e *Engine) pruneRemoved(ctx context.Context, req Request, spec *repo.ClusterSpec) []AppResult {
	if e.cfg.Inventories == nil {
		return nil
	}
	apps, err := e.cfg.Inventories.Apps(ctx)
	if err != nil {
		e.cfg.Logger.Warn("listing inventories failed; removed apps are pruned next time", "err", err)
		return nil
	}
	var out []AppResult
	emptied := len(spec.Apps) == 0 && !spec.AllowEmpty
	for _, name := range apps {
		if spec.App(name) != nil {
			continue
		}
		ar := &AppResult{App: name, Revision: req.Revision}
		if emptied {
			// Every deployed app would go: a cluster re-added with an empty list, or an
			// edit that lost the list. Keep them until the file says so.
			out = append(out, *ar.fail(StagePrune, &EmptyClusterError{Cluster: req.Cluster}))
			continue
		}
		t := time.Now()
		applied, err := e.cfg.Syncer.SyncApp(ctx, name, nil, apply.Options{AllowEmpty: true})
		ar.Durations.Apply = time.Since(t)
		ar.Apply = applied
		if err == nil {
			err = e.cfg.Inventories.Delete(ctx, name)
		}
		if err != nil {
			out = append(out, *ar.fail(StagePrune, err))
			continue
		}
		ar.Phase = PhaseRemoved
		out = append(out, *ar)
	}
	return out
}

// EmptyClusterError is a prune refused because apps.yaml lists no apps while apps are
// deployed, and does not say allowEmpty: true.
type EmptyClusterError struct {
	// Cluster is the cluster's name.
	Cluster string
}

func (e *EmptyClusterError) Error() string {
	return fmt.Sprintf("not pruned: clusters/%s/apps.yaml lists no apps while apps are deployed; add \"allowEmpty: true\" at the top of clusters/%s/apps.yaml to remove them all", e.Cluster, e.Cluster)
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// NamespaceError is an object outside the namespaces the engine may write to.
type NamespaceError struct {
	// Object is the refused object.
	Object object.Ref
	// Namespace is the object's namespace; empty when cluster-scoped.
	Namespace string
	// Allowed are the namespaces the engine may write to.
	Allowed []string
	// Scope says why the object's scope is refused: "cluster-scoped", or why it is
	// unknown; empty when it is namespaced, in a namespace not allowed.
	Scope string
}

func (e *NamespaceError) Error() string {
	if e.Scope != "" && e.Scope != "cluster-scoped" {
		return fmt.Sprintf("%s: its scope is unknown (%s); this agent may write only to namespaces %v, so every kind must be served by the cluster", e.Object, e.Scope, e.Allowed)
	}
	if e.Namespace == "" || e.Scope == "cluster-scoped" {
		return fmt.Sprintf("%s: cluster-scoped objects are not allowed; this agent may write only to namespaces %v", e.Object, e.Allowed)
	}
	return fmt.Sprintf("%s: namespace %q is not allowed; this agent may write only to namespaces %v", e.Object, e.Namespace, e.Allowed)
}

// checkNamespaces refuses objects outside allowed (when allowed is set), before any
// request. Scope comes from isNamespaced (the cluster's RESTMapper in the agent), not
// from metadata.namespace: a cluster-scoped object carrying an allowed namespace would
// otherwise pass and then be applied cluster-wide; one whose scope is unknown is
// refused too.
func checkNamespaces(objs []*unstructured.Unstructured, allowed []string, isNamespaced render.NamespacedFunc) error {
	if len(allowed) == 0 {
		return nil
	}
	for _, o := range objs {
		namespaced, err := isNamespaced(o.GroupVersionKind())
		switch {
		case err != nil:
			return &NamespaceError{Object: object.RefOf(o), Namespace: o.GetNamespace(), Allowed: allowed, Scope: err.Error()}
		case !namespaced:
			return &NamespaceError{Object: object.RefOf(o), Namespace: o.GetNamespace(), Allowed: allowed, Scope: "cluster-scoped"}
		case !slices.Contains(allowed, o.GetNamespace()):
			return &NamespaceError{Object: object.RefOf(o), Namespace: o.GetNamespace(), Allowed: allowed}
		}
	}
	return nil
}
