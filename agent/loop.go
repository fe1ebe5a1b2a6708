package agent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-gitops/outpost/agent/driftwatch"
	"github.com/outpost-gitops/outpost/agent/leader"
	"github.com/outpost-gitops/outpost/agent/source"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/engine"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// pending is what the next cycle must do; triggers add to it.
type pending struct {
	fetch bool            // ask Git whether the branch moved
	full  bool            // re-sync every app even if the revision did not move
	apps  map[string]bool // re-apply these apps (drift correction)
	drift map[string]bool // report these apps' drift
}

// loop is the active agent's work: it exists while this replica leads.
type loop struct {
	cfg    Config
	d      *deps
	m      *metrics
	tracer trace.Tracer
	log    *slog.Logger
	watch  *driftwatch.Watcher
	drifts *driftLog // logs drift when there is no hub to report it to
	eng    *engine.Engine
	owner  object.Owner // who Outpost is: built once, given to render, apply and the watcher
	fence  leader.Fence // nil without leader election; checked before every write batch
	epoch  int64        // when this replica became active, in Unix ms (api/v1 Generation)

	mu   sync.Mutex
	next pending
	wake chan struct{}
	last *source.Revision
	apps map[string]*appState // per app, guarded by mu; see appState for lifetimes
	// syncing is set during a sync cycle: a stale write seen then may be this
	// replica's own apply in flight (the watch compares with the previous apply's
	// records), so the app is only noted in staleSeen and checked again once the
	// cycle has recorded its applies.
	syncing   bool
	staleSeen map[string]bool

	// apiBack tells when the apiserver returns; used by the poll goroutine only.
	apiBack apiReturn
}

// appState is what the loop knows of one app. An entry is created by the app's first
// result and is never deleted, because seq must keep rising when a removed app
// returns; when the app is removed every other field is cleared (forget), so nothing
// of its previous life (a LastSyncedAt, a health deadline) is reported after it
// returns.
type appState struct {
	// result is the app's newest result: set by every sync of the app and by health
	// follow-ups; nil once the app is removed (and before its first result), which
	// makes it unknown to markAll, followHealth and drift reports.
	result *engine.AppResult
	// seq is the Sequence of the app's last report in this epoch: incremented by
	// every report, never cleared, so the hub (which keeps the greatest Generation)
	// accepts the reports of an app that was removed and came back.
	seq int64
	// syncedAt is when the app last synced successfully (its LastSyncedAt): set by a
	// synced result, kept across failed ones, cleared on removal.
	syncedAt time.Time
	// healthDeadline is when an app still becoming healthy times out, zero when its
	// health is not followed: set by a synced result whose health is in progress,
	// cleared by a synced result whose health is not, by a follow-up that finds it
	// settled, and on removal.
	healthDeadline time.Time
	// retryDelay is the wait before the retry of a failed app (retryLater): doubled
	// by each failure from 1 s up to retryMax, cleared by a successful sync.
	retryDelay time.Duration
	// retryTimer is the scheduled retry (retryLater); nil when none is.
	retryTimer *time.Timer
	// waitsForAPI is set when the failure being retried looked like the apiserver
	// being away: its return retries the app at once (retryOnAPIReturn).
	waitsForAPI bool
}

// retryMax bounds the backoff of a failed app's retries (and Config.Interval does).
const retryMax = time.Minute

// forget clears what the loop knows of a removed app, all but seq.
func (s *appState) forget() { *s = appState{seq: s.seq} }

// state returns app's state, creating it; l.mu must be held.
func (l *loop) state(app string) *appState {
	s := l.apps[app]
	if s == nil {
		s = &appState{}
		l.apps[app] = s
	}
	return s
}

// result returns app's newest result, nil when the app is not known.
func (l *loop) result(app string) *engine.AppResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.apps[app]; s != nil {
		return s.result
	}
	return nil
}

func newLoop(cfg Config, d *deps, m *metrics, tracer trace.Tracer, log *slog.Logger) *loop {
	l := &loop{
		cfg: cfg, d: d, m: m, tracer: tracer, log: log,
		epoch: time.Now().UnixMilli(),
		owner: object.DefaultOwner(),
		wake:  make(chan struct{}, 1),
		apps:  map[string]*appState{},
	}
	l.drifts = newDriftLog(l.log)
	l.watch = driftwatch.New(driftwatch.Config{Client: d.dynamic, Mapper: d.mapper, Owner: l.owner, Logger: l.log, OnEvent: l.onDrift, Namespaced: len(cfg.Namespaces) > 0})
	return l
}

// isNamespaced asks the cluster's discovery whether a kind is namespaced, so that an
// app's default namespace is never put on a cluster-scoped custom resource whose CRD
// another app installed. Unknown kinds are an error; the renderer then lets a CRD in
// the same render decide.
func (l *loop) isNamespaced(gvk schema.GroupVersionKind) (bool, error) {
	m, err := l.d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		l.d.mapper.Reset()
		m, err = l.d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// trigger merges p into the next cycle's work and wakes the loop.
func (l *loop) trigger(p pending) {
	l.mu.Lock()
	l.next.fetch = l.next.fetch || p.fetch
	l.next.full = l.next.full || p.full
	for a := range p.apps {
		if l.next.apps == nil {
			l.next.apps = map[string]bool{}
		}
		l.next.apps[a] = true
	}
	for a := range p.drift {
		if l.next.drift == nil {
			l.next.drift = map[string]bool{}
		}
		l.next.drift[a] = true
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loop) take() pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.next
	l.next = pending{}
	return p
}

// onDrift receives drift events from the informers: report the app, and re-apply it
// when its policy is correct, or, whatever its policy, when an object carries a stale
// write (driftwatch.Event.Stale).
func (l *loop) onDrift(ev driftwatch.Event) {
	l.m.driftEvents.Add(context.Background(), 1)
	p := pending{drift: map[string]bool{ev.App: true}}
	ar := l.result(ev.App)
	if ar != nil && ar.Config.Drift == repo.DriftCorrect && ev.Report.Drifted() {
		p.apps = map[string]bool{ev.App: true}
	}
	if len(ev.Stale) > 0 && l.staleWrite(ev.App) {
		l.log.Warn("an object was written with Outpost's field manager, not by this agent's apply (a fenced-out leader's stale write?): re-applying the app",
			"app", ev.App, "object", ev.Report.Object.String(), "field", ev.Stale[0].Path)
		p.apps = map[string]bool{ev.App: true}
	}
	l.trigger(p)
}

// staleWrite tells whether a stale write on app's objects is to be repaired now; during
// a sync cycle it only notes the app for endSync.
func (l *loop) staleWrite(app string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.syncing {
		return true
	}
	if l.staleSeen == nil {
		l.staleSeen = map[string]bool{}
	}
	l.staleSeen[app] = true
	return false
}

// beginSync marks a sync cycle in progress (see loop.syncing).
func (l *loop) beginSync() {
	l.mu.Lock()
	l.syncing = true
	l.mu.Unlock()
}

// endSync ends a sync cycle: an app that showed a stale write during it and still
// does, now that the cycle's applies are recorded in the drift watch, is applied again.
// A cycle cut short by the end of the term (ctx) recorded nothing: what looks stale is
// the new leader's writes, and repairing is the new leader's job.
func (l *loop) endSync(ctx context.Context) {
	l.mu.Lock()
	seen := l.staleSeen
	l.syncing, l.staleSeen = false, nil
	l.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for app := range seen {
		if refs := l.watch.Stale(app); len(refs) > 0 {
			l.log.Warn("objects were written with Outpost's field manager, not by this agent's apply (a fenced-out leader's stale write?): re-applying the app",
				"app", app, "objects", len(refs), "first", refs[0].String())
			l.trigger(pending{apps: map[string]bool{app: true}})
		}
	}
}

// run is the leader's loop; it returns when ctx ends, after flushing reports.
func (l *loop) run(ctx context.Context, ready *atomic.Bool) {
	l.watch.Start(ctx)
	inventories := inventory.NewStore(l.d.client, inventory.StoreOptions{Namespace: l.cfg.InventoryNamespace, Logger: l.log, Owner: l.owner})
	syncer, err := apply.New(apply.Config{
		Client: l.d.client, Logger: l.log, Concurrency: l.cfg.ApplyConcurrency, Store: inventories, Tracer: l.tracer,
		Owner: l.owner, Lister: cacheLister{watch: l.watch, fallback: apply.NewAPILister(l.d.client, l.owner)},
		Fence: l.fence, // a nil Fence is no fence
	})
	if err != nil {
		l.log.Error("cannot create the apply engine", "err", err)
		return
	}
	getter := health.NewDynamicGetter(l.d.dynamic, l.d.mapper)
	charts, err := newChartFetcher(l.cfg, l)
	if err != nil {
		l.log.Error("cannot create the Helm chart fetcher", "err", err)
		return
	}
	l.eng, err = engine.New(engine.Config{
		Syncer: syncer, Health: cacheGetter{watch: l.watch, fallback: getter},
		Inventories: inventories,
		Concurrency: l.cfg.Concurrency, Logger: l.log, Tracer: l.tracer, Namespaces: l.cfg.Namespaces,
		IsNamespaced: l.isNamespaced, Owner: l.owner,
		// Lookup reads with the agent's own clients: Helm apps with helm.lookup see their
		// namespace and cluster-scoped objects, read-only (render restricts it).
		Render:       render.Options{Charts: charts, Lookup: render.NewClusterReader(l.d.dynamic, l.d.mapper)},
		Capabilities: clusterCapabilities(l.d.kube.Discovery()),
	})
	if err != nil {
		l.log.Error("cannot create the sync engine", "err", err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if l.d.hub != nil {
		wg.Go(func() { l.d.hub.Run(ctx) })
		wg.Go(func() { l.longPoll(ctx) })
		defer l.flush(ctx)
	}
	wg.Go(func() { l.poll(ctx) })
	l.trigger(pending{fetch: true, full: true})
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		l.cycle(ctx, l.take())
		ready.Store(true)
	}
}

// flush delivers the queued reports on shutdown, bounded by ShutdownTimeout.
func (l *loop) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.ShutdownTimeout)
	defer cancel()
	if err := l.d.hub.Flush(fctx); err != nil {
		l.log.Warn("reports not delivered before shutdown", "err", err)
	}
}

// poll triggers the cheap "did Git move?" check, the jittered full resync, and
// health follow-ups.
func (l *loop) poll(ctx context.Context) {
	gitTick := time.NewTicker(l.cfg.GitPollInterval)
	defer gitTick.Stop()
	healthTick := time.NewTicker(time.Second)
	defer healthTick.Stop()
	full := time.NewTimer(jitter(l.cfg.Interval))
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gitTick.C:
			l.trigger(pending{fetch: true})
		case <-full.C:
			l.trigger(pending{fetch: true, full: true})
			full.Reset(jitter(l.cfg.Interval))
		case <-healthTick.C:
			l.followHealth(ctx)
			l.retryOnAPIReturn(ctx)
		}
	}
}

// jitter spreads d by ±10% so that agents do not resync in lockstep.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// longPoll holds the hub's desired-revision long-poll open and triggers a fetch as
// soon as it answers "changed".
func (l *loop) longPoll(ctx context.Context) {
	since := ""
	backoff := time.Second
	for ctx.Err() == nil {
		d, err := l.d.hub.WaitDesired(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Debug("long-poll failed; Git polling continues", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 30*time.Second)
			}
			continue
		}
		backoff = time.Second
		if d.Changed {
			l.trigger(pending{fetch: true})
		}
		since = d.Revision
	}
}

// cycle does one round of work: fetch, then sync what changed, then report.
func (l *loop) cycle(ctx context.Context, p pending) {
	if p.fetch || p.full || len(p.apps) > 0 {
		l.syncCycle(ctx, p)
	}
	for app := range p.drift {
		l.report(app, nil, reportOpts{})
	}
}

func (l *loop) syncCycle(ctx context.Context, p pending) {
	ctx, span := l.tracer.Start(ctx, "sync", trace.WithAttributes(attribute.String("cluster", l.cfg.ClusterName)))
	defer span.End()
	l.beginSync()
	defer l.endSync(ctx)
	start := time.Now()
	fctx, fspan := l.tracer.Start(ctx, "fetch")
	rev, err := l.d.source.Sync(fctx)
	fspan.End()
	fetch := time.Since(start)
	if ctx.Err() != nil {
		return // shutting down: the hub keeps the last reported state
	}
	if err != nil {
		l.sourceUnavailable(err)
		return
	}
	l.mu.Lock()
	moved := l.last == nil || l.last.SHA != rev.SHA
	l.mu.Unlock()
	if !moved && !p.full && len(p.apps) == 0 {
		return // neither Git nor the cluster changed: no request at all
	}
	req := engine.Request{Root: rev.Dir, Revision: rev.Source, Cluster: l.cfg.ClusterName}
	if !moved && !p.full {
		req.Apps = p.apps
	}
	res, err := l.eng.SyncCluster(ctx, req)
	if ctx.Err() != nil {
		// Shutting down mid-sync: the apply was aborted between objects, which the
		// inventory makes safe; the next leader resumes. Nothing is reported as failed.
		l.log.Info("sync aborted by shutdown", "revision", rev.Source)
		return
	}
	l.m.syncDuration.Record(ctx, time.Since(start).Seconds())
	if err != nil {
		l.clusterFailed(rev, err)
		return
	}
	l.mu.Lock()
	l.last = rev
	l.mu.Unlock()
	ok := true
	for i := range res.Apps {
		ar := &res.Apps[i]
		ok = l.appDone(ctx, ar, fetch) && ok
		if ar.Phase == engine.PhaseFailed && ar.Error != nil && ar.Error.Stage != engine.StageRender {
			l.retryLater(ctx, ar.App, ar.Error)
		}
	}
	for i := range res.Removed {
		ar := &res.Removed[i]
		// An app whose prune was refused (an empty apps.yaml without allowEmpty, a
		// failed delete) keeps its objects: keep watching them for drift.
		if ar.Phase == engine.PhaseRemoved {
			if err := l.watch.SetDesired(ctx, ar.App, nil, nil); err != nil {
				l.log.Warn("stopping the drift watch of a removed app failed", "app", ar.App, "err", err)
			}
		}
		ok = l.appDone(ctx, ar, fetch) && ok
	}
	if ok {
		l.m.lastSuccess.Store(time.Now().Unix())
	}
}

// appDone records an app's result, points the drift watch at what was applied, and
// reports it. It returns whether the app synced.
func (l *loop) appDone(ctx context.Context, ar *engine.AppResult, fetch time.Duration) bool {
	if ar.Apply != nil {
		c := ar.Apply.Changes.Counts
		l.m.applied.Add(ctx, int64(c.Created+c.Configured+c.Recreated))
		l.m.pruned.Add(ctx, int64(c.Deleted))
		if ar.Phase != engine.PhaseRemoved {
			if err := l.watch.SetDesired(ctx, ar.App, ar.Objects, appliedVersions(ar.Apply)); err != nil {
				l.log.Warn("drift watch not updated", "app", ar.App, "err", err)
			}
		}
	}
	if ar.Phase == engine.PhaseFailed {
		l.m.syncErrors.Add(ctx, 1)
		l.log.Warn("app sync failed", "app", ar.App, "err", ar.Error)
	}
	l.mu.Lock()
	s := l.state(ar.App)
	if ar.Phase == engine.PhaseSynced {
		s.retryDelay = 0
		s.syncedAt = ar.SyncedAt
		s.healthDeadline = time.Time{}
		if ar.Health.Status == health.InProgress {
			s.healthDeadline = time.Now().Add(ar.Config.HealthTimeout.Duration)
		}
	}
	s.result = ar
	s.seq++
	gen, synced := l.generation(s), s.syncedAt
	if ar.Phase == engine.PhaseRemoved {
		s.forget() // after taking its last report's LastSyncedAt
	}
	l.mu.Unlock()
	l.send(ar, gen, synced, reportOpts{fetch: fetch})
	return ar.Phase == engine.PhaseSynced || ar.Phase == engine.PhaseRemoved
}

// appliedVersions is the resourceVersion of each object of an apply right after
// Outpost wrote it (or, skipped, as recorded before); failed objects have none.
func appliedVersions(res *apply.Result) map[object.Ref]string {
	out := make(map[object.Ref]string, len(res.Changes.Entries))
	for _, ch := range res.Changes.Entries {
		if rv := ch.Recorded().ResourceVersion; rv != "" {
			out[ch.Ref] = rv
		}
	}
	return out
}

// retryLater syncs a failed app again after a backoff, unless a retry is already
// scheduled: a failure that passes (the apiserver back after an outage, a namespace
// created) is repaired without waiting for the next commit or full resync; when the
// failure (cause) looked like the apiserver being away, its return cuts the backoff
// short (retryOnAPIReturn). Render failures are not retried: the same Git revision
// renders the same.
func (l *loop) retryLater(ctx context.Context, app string, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(app)
	if s.retryTimer != nil {
		return
	}
	s.retryDelay = min(max(2*s.retryDelay, time.Second), retryMax, l.cfg.Interval)
	s.waitsForAPI = apiUnavailable(cause)
	d := s.retryDelay
	l.log.Info("retrying the failed app", "app", app, "after", d, "waitingForAPIServer", s.waitsForAPI)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		l.mu.Lock()
		current := s.retryTimer == t
		if current {
			s.retryTimer = nil
		}
		l.mu.Unlock()
		if current && ctx.Err() == nil {
			l.trigger(pending{apps: map[string]bool{app: true}})
		}
	})
	s.retryTimer = t
}

// reportOpts adjust a report.
type reportOpts struct {
	fetch time.Duration // the cycle's Git fetch time
	phase apiv1.Phase   // overrides the phase derived from the result
}

// report queues the newest state of app for the hub: ar if given, else the last
// result, with the app's current drift.
func (l *loop) report(app string, ar *engine.AppResult, o reportOpts) {
	l.mu.Lock()
	s := l.apps[app]
	if ar == nil && s != nil {
		ar = s.result
	}
	if ar == nil {
		l.mu.Unlock()
		return
	}
	s = l.state(app)
	s.seq++
	gen, synced := l.generation(s), s.syncedAt
	l.mu.Unlock()
	l.send(ar, gen, synced, o)
}

// generation is the Generation of s's report numbered s.seq; l.mu must be held.
func (l *loop) generation(s *appState) apiv1.Generation {
	return apiv1.Generation{Epoch: l.epoch, Sequence: s.seq}
}

// send queues ar as the state gen of its app, with the app's current drift.
func (l *loop) send(ar *engine.AppResult, gen apiv1.Generation, synced time.Time, o reportOpts) {
	reports := l.watch.Drift(ar.App)
	l.m.drifted.Store(int64(l.watch.DriftedObjects()))
	if l.d.hub == nil {
		l.drifts.observe(ar.App, string(ar.Config.Drift), reports)
		return
	}
	st := appStatus(ar, gen, o.fetch, synced)
	if o.phase != "" {
		st.Phase = o.phase
	}
	l.d.hub.Put(st, driftEntries(ar.App, reports, ar.Config.Drift == repo.DriftCorrect))
}

// knownApps returns the newest result of every known (not removed) app.
func (l *loop) knownApps() []*engine.AppResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*engine.AppResult, 0, len(l.apps))
	for _, s := range l.apps {
		if s.result != nil {
			out = append(out, s.result)
		}
	}
	return out
}

// followHealth re-checks, from the watch cache, the apps still becoming healthy.
func (l *loop) followHealth(ctx context.Context) {
	type follow struct {
		ar       *engine.AppResult
		deadline time.Time
	}
	l.mu.Lock()
	due := map[string]follow{}
	for app, s := range l.apps {
		if !s.healthDeadline.IsZero() && s.result != nil {
			due[app] = follow{s.result, s.healthDeadline}
		}
	}
	l.mu.Unlock()
	for app, f := range due {
		ar, deadline := f.ar, f.deadline
		refs := object.RefsOf(ar.Objects)
		h, err := health.Check(ctx, cacheGetter{watch: l.watch, fallback: notWatched{}}, refs)
		if err != nil {
			continue
		}
		if h.Status == health.InProgress && time.Now().After(deadline) {
			h.Status, h.Message = health.Timeout, "not healthy within "+ar.Config.HealthTimeout.Duration.String()+": "+h.Message
		}
		if h.Status == ar.Health.Status && h.Message == ar.Health.Message {
			continue
		}
		next := *ar
		next.Health = h
		l.mu.Lock()
		s := l.apps[app]
		if s == nil || s.result != ar {
			// A sync (or a removal) replaced the result meanwhile: it is newer.
			l.mu.Unlock()
			continue
		}
		s.result = &next
		if h.Status != health.InProgress {
			s.healthDeadline = time.Time{}
		}
		l.mu.Unlock()
		l.report(app, &next, reportOpts{})
	}
}

// notWatched refuses look-ups outside the watch cache (health follow-ups make no
// requests).
type notWatched struct{}

func (notWatched) Get(_ context.Context, ref object.Ref) (*unstructured.Unstructured, error) {
	return nil, errors.New(ref.String() + ": not in the watch cache")
}

// sourceUnavailable reports every known app as SourceUnavailable: the cluster keeps
// its last synced state and nothing is pruned.
func (l *loop) sourceUnavailable(err error) {
	l.log.Warn("git source unavailable; keeping the last synced state", "err", err)
	l.markAll(apiv1.PhaseSourceUnavailable, engine.StageFetch, err)
}

// clusterFailed reports a failure to load the cluster's desired state (e.g. a broken
// apps.yaml) on every known app; nothing was applied or pruned.
func (l *loop) clusterFailed(rev *source.Revision, err error) {
	l.log.Error("cluster desired state not loadable; nothing applied or pruned", "revision", rev.Source, "err", err)
	l.markAll(apiv1.PhaseFailed, engine.StageRender, err)
}

// markAll reports every known app as failed at stage with err, and phase on the wire.
func (l *loop) markAll(phase apiv1.Phase, stage engine.Stage, err error) {
	for _, prev := range l.knownApps() {
		next := *prev
		next.Phase = engine.PhaseFailed
		next.Error = engine.Locate(stage, err)
		l.report(next.App, &next, reportOpts{phase: phase})
	}
}
