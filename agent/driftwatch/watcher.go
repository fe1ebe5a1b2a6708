package driftwatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/outpost-gitops/outpost/sync/drift"
	"github.com/outpost-gitops/outpost/sync/object"
)

// lastApplied is kubectl's client-side apply annotation: large, never Outpost's, and
// dropped from the cache to save memory.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Event is a change in the drift state of one managed object.
type Event struct {
	// App is the app the object belongs to.
	App string `json:"app"`
	// Report is the object's drift; a report without fields that is not Deleted means
	// the drift was cleared.
	Report *drift.Report `json:"report"`
	// Stale are the fields Outpost's own field manager owns with a value other than the
	// one Outpost applied, on an object whose resourceVersion is not the one Outpost's
	// apply recorded: Outpost's field manager wrote them, but not this agent's apply —
	// a leader that was fenced out (paused beyond its Lease) sending a write it had
	// prepared before. Not drift: the app must be applied again whatever its drift
	// policy. Empty when there is none (or none any more).
	Stale []drift.FieldDrift `json:"stale,omitempty"`
}

// Config configures a Watcher.
type Config struct {
	// Client reads and watches objects.
	Client dynamic.Interface
	// Mapper maps kinds to resources; it is reset when a kind is unknown (a new CRD).
	Mapper meta.ResettableRESTMapper
	// Owner is who Outpost is: the watch selects the objects its labels mark, and a
	// field its field manager owns with another value is Outpost's own apply in flight,
	// not drift. Pass the Owner apply uses. Default object.DefaultOwner().
	Owner object.Owner
	// OnEvent receives drift events. It is called from informer goroutines and must
	// not block for long.
	OnEvent func(Event)
	// Now is the clock used for observation times. Default time.Now.
	Now func() time.Time
	// Logger receives informer problems. Default: discard.
	Logger *slog.Logger
	// Namespaced watches each namespace separately instead of the whole cluster, for
	// agents whose RBAC is limited to some namespaces (cluster-scoped objects are then
	// not watched).
	Namespaced bool
	// SyncWait bounds how long SetDesired waits for the informers it starts to sync.
	// A new informer syncs in milliseconds; one started while the apiserver does not
	// answer retries its list with a backoff of up to 30 s, and must not hold the
	// agent's loop (other apps, reports) until then. Default 5 s.
	SyncWait time.Duration
}

type desiredObj struct {
	app string
	obj *unstructured.Unstructured
	// version is the resourceVersion the object had right after Outpost applied it
	// (the apply's record); "" when not known, and then no write is called stale.
	version string
}

type informer struct {
	inf  cache.SharedIndexInformer
	stop context.CancelFunc
}

// informerKey names an informer: a resource, in one namespace or ("") all of them.
type informerKey struct {
	gvr       schema.GroupVersionResource
	namespace string
}

// Watcher watches managed objects for drift. Create it with New and Start it.
type Watcher struct {
	cfg Config
	ctx context.Context // lifetime of the informers, set by Start

	mu        sync.RWMutex
	desired   map[object.Ref]desiredObj
	byApp     map[string][]object.Ref
	resources map[schema.GroupKind]schema.GroupVersionResource
	informers map[informerKey]*informer
	state     map[object.Ref]string // fingerprint of the last emitted drift; absent = none
	current   map[object.Ref]*drift.Report
	stale     map[object.Ref]bool // objects whose last event had Stale fields
}

// New returns a Watcher; it watches nothing until Start and SetDesired.
func New(cfg Config) *Watcher {
	cfg.Owner = cfg.Owner.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	if cfg.SyncWait <= 0 {
		cfg.SyncWait = 5 * time.Second
	}
	return &Watcher{
		cfg:       cfg,
		desired:   map[object.Ref]desiredObj{},
		byApp:     map[string][]object.Ref{},
		resources: map[schema.GroupKind]schema.GroupVersionResource{},
		informers: map[informerKey]*informer{},
		state:     map[object.Ref]string{},
		current:   map[object.Ref]*drift.Report{},
		stale:     map[object.Ref]bool{},
	}
}

// Start sets the lifetime of the informers: they stop when ctx ends.
func (w *Watcher) Start(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	go func() {
		<-ctx.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		for key, inf := range w.informers {
			inf.stop()
			delete(w.informers, key)
		}
	}()
}

// SetDesired replaces the desired objects of app (what the agent just applied) and
// makes sure every kind among them is watched, waiting until new informers have
// synced, for Config.SyncWait at most: an informer that has not synced by then (the
// apiserver does not answer) goes on in the background, Get answers an error for its
// objects until it has, and its first list compares them. Objects must carry their
// namespace if namespaced. versions holds the resourceVersion of each object right
// after the apply (its inventory record); an object missing there (its apply failed)
// is never reported Stale. An empty objs removes the app.
func (w *Watcher) SetDesired(ctx context.Context, app string, objs []*unstructured.Unstructured, versions map[object.Ref]string) error {
	wanted := make(map[informerKey]bool, len(objs))
	for _, o := range objs {
		gvr, err := w.resourceFor(o.GroupVersionKind())
		if err != nil {
			return fmt.Errorf("watch %s %s/%s of app %s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), app, err)
		}
		wanted[w.informerKeyFor(gvr, o.GetNamespace())] = true
	}
	w.mu.Lock()
	if w.ctx == nil {
		w.mu.Unlock()
		return fmt.Errorf("drift watcher not started")
	}
	keys := make([]object.Ref, 0, len(objs))
	kept := make(map[object.Ref]bool, len(objs))
	for _, o := range objs {
		k := object.RefOf(o)
		keys = append(keys, k)
		// An object that stays with this app keeps its drift state: observe below
		// re-evaluates it and emits only if it changed, so a resync of a drifted
		// app neither repeats its drift events nor resets when they were seen. A
		// stale state is dropped: versions is a new record of the apply.
		kept[k] = w.desired[k].app == app && !w.stale[k]
	}
	for _, k := range w.byApp[app] {
		if w.desired[k].app == app && !kept[k] {
			w.forget(k)
		}
	}
	for i, o := range objs {
		k := keys[i]
		if !kept[k] {
			w.forget(k) // new to this app, or taken over from another app
		}
		w.desired[k] = desiredObj{app: app, obj: o, version: versions[k]}
	}
	if len(keys) == 0 {
		delete(w.byApp, app)
	} else {
		w.byApp[app] = keys
	}
	var started []cache.InformerSynced
	for key := range wanted {
		if _, ok := w.informers[key]; !ok {
			started = append(started, w.startInformer(key).HasSynced)
		}
	}
	w.stopUnused()
	w.mu.Unlock()
	if len(started) > 0 {
		wctx, cancel := context.WithTimeout(ctx, w.cfg.SyncWait)
		synced := cache.WaitForCacheSync(wctx.Done(), started...)
		cancel()
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("watch of app %s: caches not synced: %w", app, ctx.Err())
		case !synced:
			w.cfg.Logger.WarnContext(ctx, "drift watch not synced yet; it compares the objects once the apiserver answers its list",
				"app", app, "waited", w.cfg.SyncWait)
		}
	}
	// Objects already in the cache are compared against the new desired state now:
	// the informer only calls back on the next change.
	for _, o := range objs {
		if live, ok, _ := w.Get(object.RefOf(o)); ok {
			w.observe(live)
		}
	}
	return nil
}

// forget drops what the watcher knows of k; the caller holds w.mu.
func (w *Watcher) forget(k object.Ref) {
	delete(w.desired, k)
	delete(w.state, k)
	delete(w.current, k)
	delete(w.stale, k)
}

// resourceFor maps a kind to its resource, refreshing discovery once for unknown kinds.
func (w *Watcher) resourceFor(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	w.mu.RLock()
	gvr, ok := w.resources[gvk.GroupKind()]
	w.mu.RUnlock()
	if ok {
		return gvr, nil
	}
	m, err := w.cfg.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		w.cfg.Mapper.Reset()
		m, err = w.cfg.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	w.mu.Lock()
	w.resources[gvk.GroupKind()] = m.Resource
	w.mu.Unlock()
	return m.Resource, nil
}

// informerKeyFor is the informer that watches objects of gvr in namespace.
func (w *Watcher) informerKeyFor(gvr schema.GroupVersionResource, namespace string) informerKey {
	if !w.cfg.Namespaced {
		namespace = metav1.NamespaceAll
	}
	return informerKey{gvr: gvr, namespace: namespace}
}

// startInformer starts a label-selected informer; w.mu must be held.
func (w *Watcher) startInformer(key informerKey) cache.SharedIndexInformer {
	ctx, stop := context.WithCancel(w.ctx)
	gvr := key.gvr
	f := dynamicinformer.NewFilteredDynamicInformer(w.cfg.Client, gvr, key.namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = w.cfg.Owner.Selector() })
	inf := f.Informer()
	_ = inf.SetTransform(dropLastApplied)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observeAny(obj) },
		UpdateFunc: func(_, obj any) { w.observeAny(obj) },
		DeleteFunc: w.deleted,
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.cfg.Logger.Warn("drift watch error", "resource", gvr.String(), "err", err)
	})
	go inf.RunWithContext(ctx)
	w.informers[key] = &informer{inf: inf, stop: stop}
	return inf
}

// stopUnused stops informers of kinds no app wants any more; w.mu must be held.
func (w *Watcher) stopUnused() {
	used := map[informerKey]bool{}
	for k := range w.desired {
		used[w.informerKeyFor(w.resources[k.GroupKind()], k.Namespace)] = true
	}
	for key, inf := range w.informers {
		if !used[key] {
			inf.stop()
			delete(w.informers, key)
		}
	}
}

func dropLastApplied(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if a := u.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			u.SetAnnotations(a)
		}
	}
	return obj, nil
}

func (w *Watcher) observeAny(obj any) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		w.observe(u)
	}
}

// observe compares a live object with its desired state and emits an Event when its
// drift state changed.
func (w *Watcher) observe(live *unstructured.Unstructured) {
	k := object.RefOf(live)
	w.mu.RLock()
	d, ok := w.desired[k]
	w.mu.RUnlock()
	if !ok {
		return
	}
	rep, err := drift.Detect(w.cfg.Owner, d.obj, live, w.cfg.Now())
	if err != nil {
		w.cfg.Logger.Warn("drift detection failed", "app", d.app, "object", object.RefOf(live).String(), "err", err)
		return
	}
	var own []drift.FieldDrift
	rep.Fields, own = outOfBand(rep.Fields, w.cfg.Owner.FieldManager)
	var stale []drift.FieldDrift
	if d.version != "" && live.GetResourceVersion() != d.version {
		stale = own
	}
	w.emit(k, d.app, rep, stale)
}

// outOfBand splits the drifted fields: those another manager caused (or removed),
// and those Outpost's own manager still owns with another value. The latter are its
// own apply in flight, or, when the object is not at the resourceVersion that apply
// recorded, a stale write (Event.Stale).
func outOfBand(fields []drift.FieldDrift, manager string) (others, own []drift.FieldDrift) {
	for _, f := range fields {
		if f.Manager != manager {
			others = append(others, f)
		} else {
			own = append(own, f)
		}
	}
	return others, own
}

func (w *Watcher) deleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k := object.RefOf(u)
	w.mu.RLock()
	d, ok := w.desired[k]
	w.mu.RUnlock()
	if !ok {
		return // pruned by Outpost, or never ours
	}
	rep, err := drift.Detect(w.cfg.Owner, d.obj, nil, w.cfg.Now())
	if err != nil {
		return
	}
	w.emit(k, d.app, rep, nil)
}

// emit sends an Event if the drift fingerprint of k (its drift and stale fields)
// changed.
func (w *Watcher) emit(k object.Ref, app string, rep *drift.Report, stale []drift.FieldDrift) {
	fp := fingerprint(rep, stale)
	w.mu.Lock()
	if d, ok := w.desired[k]; !ok || d.app != app {
		w.mu.Unlock()
		return
	}
	if w.state[k] == fp {
		// The same drift: no event. The report is refreshed (the desired values
		// may have changed with a new render) but keeps when it was first seen.
		if old := w.current[k]; old != nil && rep.Drifted() {
			rep.ObservedAt = old.ObservedAt
			for i := range rep.Fields {
				if i < len(old.Fields) && old.Fields[i].Path == rep.Fields[i].Path {
					rep.Fields[i].Time = old.Fields[i].Time
				}
			}
			w.current[k] = rep
		}
		w.mu.Unlock()
		return
	}
	if fp == "" {
		delete(w.state, k)
	} else {
		w.state[k] = fp
	}
	if rep.Drifted() {
		w.current[k] = rep
	} else {
		delete(w.current, k)
	}
	if len(stale) > 0 {
		w.stale[k] = true
	} else {
		delete(w.stale, k)
	}
	w.mu.Unlock()
	w.cfg.OnEvent(Event{App: app, Report: rep, Stale: stale})
}

// fingerprint identifies a drift state; "" means no drift and no stale field.
func fingerprint(rep *drift.Report, stale []drift.FieldDrift) string {
	if !rep.Drifted() && len(stale) == 0 {
		return ""
	}
	type field struct {
		Path, Manager string
		Live          any
	}
	fields := func(in []drift.FieldDrift) []field {
		fs := make([]field, len(in))
		for i, f := range in {
			fs[i] = field{f.Path, f.Manager, f.Live}
		}
		return fs
	}
	data, _ := json.Marshal(struct {
		Deleted       bool
		Fields, Stale []field
	}{rep.Deleted, fields(rep.Fields), fields(stale)})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Drift returns the current drift of every object of app that has drifted, sorted by
// object.
func (w *Watcher) Drift(app string) []*drift.Report {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var out []*drift.Report
	for _, k := range w.byApp[app] {
		if r := w.current[k]; r != nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *drift.Report) int { return strings.Compare(a.Object.String(), b.Object.String()) })
	return out
}

// Stale returns the objects of app that carry a stale write (see Event.Stale), as of
// the last event of each, sorted.
func (w *Watcher) Stale(app string) []object.Ref {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var out []object.Ref
	for _, k := range w.byApp[app] {
		if w.stale[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, object.Ref.Compare)
	return out
}

// DriftedObjects is the number of managed objects currently drifted.
func (w *Watcher) DriftedObjects() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.current)
}

// Get returns an object from the watch cache. ok is false when the object does not
// exist; an error means the cache cannot tell: its kind is not watched (no app wants
// it), or its watch has not synced yet.
func (w *Watcher) Get(ref object.Ref) (*unstructured.Unstructured, bool, error) {
	w.mu.RLock()
	gvr, known := w.resources[ref.GroupKind()]
	inf := w.informers[w.informerKeyFor(gvr, ref.Namespace)]
	w.mu.RUnlock()
	if !known || inf == nil {
		return nil, false, fmt.Errorf("%s %s/%s: kind not watched", ref.Kind, ref.Namespace, ref.Name)
	}
	if !inf.inf.HasSynced() {
		// An empty cache would say the object does not exist.
		return nil, false, fmt.Errorf("%s %s/%s: watch not synced yet", ref.Kind, ref.Namespace, ref.Name)
	}
	key := ref.Name
	if ref.Namespace != "" {
		key = ref.Namespace + "/" + ref.Name
	}
	obj, ok, err := inf.inf.GetIndexer().GetByKey(key)
	if err != nil || !ok {
		return nil, false, err
	}
	return obj.(*unstructured.Unstructured), true, nil
}
