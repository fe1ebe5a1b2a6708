package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outpost-gitops/outpost/sync/object"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/plan"
)

// SyncApp makes the cluster hold exactly the desired objects of one app, a
// successful render's output:
//
//  1. read the inventory and, for objects with a record, the live resourceVersions;
//     pair them with the desired objects (plan.Build);
//  2. store the inventory as stored ∪ desired, before any apply;
//  3. apply in stages (Apply);
//  4. only if every object applied, prune what left the app (Prune);
//  5. store the inventory with the new records, minus what was pruned.
//
// Each store is skipped when the inventory did not change, so a sync with nothing
// new makes no write and no dry-run. A kill at any point leaves an inventory that
// names every object Outpost may have created and none it did not: the next sync
// neither orphans nor wrongly deletes. An empty desired set over a non-empty
// inventory is refused with a *PruneRefusedError before anything is done, unless
// opts.AllowEmpty. When objects fail, the Result is returned together with an
// error joining their *ObjectError.
func (s *Syncer) SyncApp(ctx context.Context, app string, desired []*unstructured.Unstructured, opts Options) (*Result, error) {
	start := time.Now()
	res := &Result{App: app}
	objs, err := s.prepare(app, desired)
	if err != nil {
		return res, err
	}
	inv, err := s.cfg.Store.Load(ctx, app)
	if err != nil {
		return res, err
	}
	if len(objs) == 0 && len(inv.Entries) > 0 && !opts.AllowEmpty && !opts.DisablePrune {
		return res, &PruneRefusedError{App: app, Reason: RefusedEmpty, Objects: len(inv.Entries)}
	}
	pctx, span := s.cfg.Tracer.Start(ctx, "plan")
	p, err := s.build(pctx, app, objs, inv)
	span.End()
	if err != nil {
		return res, err
	}

	union := inventory.Union(inv.Entries, desiredEntries(p))
	if err := s.fenced(app); err != nil {
		return res, err
	}
	if inv, err = s.save(ctx, res, inv, union); err != nil {
		return res, err
	}
	if err := s.interrupt(ctx, app, StepUnionSaved); err != nil {
		return res, err
	}

	actx, span := s.cfg.Tracer.Start(ctx, "apply")
	applied, applyErr := s.Apply(actx, p, opts)
	span.End()
	res.Changes = applied.Changes()
	if err := s.interrupt(ctx, app, StepApplied); err != nil {
		return res, err
	}

	var pruned ChangeSet
	var pruneErr error
	switch {
	case opts.DisablePrune:
		res.PruneSkipped = PruneSkipDisabled
	case !applied.Complete():
		res.PruneSkipped = PruneSkipApplyFailed
	default:
		pctx, span := s.cfg.Tracer.Start(ctx, "prune")
		pruned, pruneErr = s.Prune(pctx, applied, opts)
		span.End()
		res.Pruned = pruneErr == nil || !isRefusal(pruneErr)
	}
	res.Changes = newChangeSet(slices.Concat(applied.Changes().Entries, pruned.Entries))
	if err := s.interrupt(ctx, app, StepPruned); err != nil {
		return res, err
	}

	if err := s.fenced(app); err != nil {
		return res, err
	}
	if inv, err = s.save(ctx, res, inv, nextEntries(union, applied.Changes(), pruned)); err != nil {
		return res, err
	}
	res.Inventory = len(inv.Entries)
	res.Duration = time.Since(start)
	s.log(ctx, res)
	if err := errors.Join(applyErr, pruneErr); err != nil {
		return res, fmt.Errorf("sync app %q: %w", app, err)
	}
	return res, nil
}

// build observes the live versions of recorded objects and pairs.
func (s *Syncer) build(ctx context.Context, app string, objs []*unstructured.Unstructured, inv *inventory.Inventory) (*plan.Plan, error) {
	var live map[object.Ref]string
	if observable := plan.Observable(objs, inv.Entries); len(observable) > 0 {
		var err error
		if live, err = s.cfg.Lister.LiveVersions(ctx, app, observable); err != nil {
			return nil, fmt.Errorf("observe live objects of app %q: %w", app, err)
		}
	}
	return plan.Build(plan.Input{App: app, Desired: objs, Inventory: inv.Entries, Live: live})
}

// prepare returns copies of the desired objects as they will be applied: no namespace
// on cluster-scoped kinds, and no invalid caBundle on CRDs. It refuses an object
// without the app's ownership labels: render sets them (the one step that does), and
// an object applied without them could never be pruned.
func (s *Syncer) prepare(app string, desired []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if errs := validation.IsValidLabelValue(app); app == "" || len(errs) > 0 {
		return nil, fmt.Errorf("app name %q is not a valid label value: %v", app, errs)
	}
	mapper := s.cfg.Client.RESTMapper()
	out := make([]*unstructured.Unstructured, 0, len(desired))
	for i, d := range desired {
		if d == nil {
			return nil, fmt.Errorf("app %q: desired object %d is nil", app, i)
		}
		if !s.cfg.Owner.Owns(d.GetLabels(), app) {
			return nil, fmt.Errorf("app %q: %s lacks the ownership labels %v (render sets them): refusing to apply an object prune could not recognise", app, object.RefOf(d), s.cfg.Owner.Labels(app))
		}
		obj := d.DeepCopy()
		utils.RemoveCABundleFromCRD(obj)
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case meta.IsNoMatchError(err):
			// Not served yet, typically defined by a CRD of this app: keep as rendered.
		case err != nil:
			return nil, fmt.Errorf("app %q: map kind of %s: %w", app, object.RefOf(obj), err)
		case mapping.Scope.Name() == meta.RESTScopeNameRoot:
			obj.SetNamespace("")
		}
		out = append(out, obj)
	}
	return out, nil
}

// save stores entries as the app's inventory unless they are what inv holds, and
// returns the inventory now stored.
func (s *Syncer) save(ctx context.Context, res *Result, inv *inventory.Inventory, entries []inventory.Entry) (*inventory.Inventory, error) {
	if inventory.Equal(entries, inv.Entries) {
		return inv, nil
	}
	next := inv.WithEntries(entries)
	if err := s.cfg.Store.Save(ctx, next); err != nil {
		return inv, err
	}
	res.InventoryWrites++
	return next, nil
}

// fenced checks Config.Fence before a write batch.
func (s *Syncer) fenced(app string) error {
	if s.cfg.Fence == nil {
		return nil
	}
	if err := s.cfg.Fence(); err != nil {
		return fmt.Errorf("app %q: no write: %w", app, err)
	}
	return nil
}

// fencedWrite checks Config.Fence before one object's write: the check of the batch
// is not enough, a replica paused in the middle of a batch (SIGSTOP, a VM freeze)
// beyond its Lease would send the batch's remaining writes once it resumes.
func (s *Syncer) fencedWrite() error {
	if s.cfg.Fence == nil {
		return nil
	}
	if err := s.cfg.Fence(); err != nil {
		return fmt.Errorf("no write: %w", err)
	}
	return nil
}

func (s *Syncer) interrupt(ctx context.Context, app string, step Step) error {
	if s.cfg.Interrupter == nil {
		return nil
	}
	if err := s.cfg.Interrupter.Interrupt(ctx, app, step); err != nil {
		return fmt.Errorf("sync app %q interrupted after step %s: %w", app, step, err)
	}
	return nil
}

func (s *Syncer) log(ctx context.Context, res *Result) {
	c := res.Changes.Counts
	s.cfg.Logger.InfoContext(ctx, "app synced", "app", res.App, "created", c.Created,
		"configured", c.Configured, "recreated", c.Recreated, "unchanged", c.Unchanged,
		"skipped", c.Skipped, "kept", c.Kept, "deleted", c.Deleted, "disowned", c.Disowned, "failed", c.Failed,
		"pruneSkipped", res.PruneSkipped, "inventory", res.Inventory,
		"inventoryWrites", res.InventoryWrites, "duration", res.Duration)
}

func isRefusal(err error) bool {
	var r *PruneRefusedError
	return errors.As(err, &r)
}

// desiredEntries returns the inventory entries of the plan's desired objects.
func desiredEntries(p *plan.Plan) []inventory.Entry {
	var out []inventory.Entry
	for _, it := range p.Items {
		if it.Action != plan.ActionDelete {
			out = append(out, inventory.Entry{Ref: it.Ref, Version: it.Version})
		}
	}
	return out
}

// nextEntries returns the inventory after a sync: the union written before the
// apply, with the records of successful applies, minus the objects pruned or
// disowned. Failed objects keep their previous entry, so they are retried.
func nextEntries(union []inventory.Entry, applied, pruned ChangeSet) []inventory.Entry {
	idx := make(map[object.Ref]int, len(union))
	out := make([]inventory.Entry, len(union))
	copy(out, union)
	for i, e := range out {
		idx[e.Ref] = i
	}
	for _, ch := range applied.Entries {
		i, ok := idx[ch.Ref]
		if !ok {
			continue
		}
		switch ch.Action {
		case ActionCreated, ActionConfigured, ActionRecreated, ActionUnchanged, ActionSkipped, ActionKept:
			out[i].Version, out[i].Record = ch.Version, ch.record
		}
	}
	gone := map[object.Ref]bool{}
	for _, ch := range pruned.Entries {
		if ch.Action == ActionDeleted || ch.Action == ActionDisowned {
			gone[ch.Ref] = true
		}
	}
	kept := out[:0]
	for _, e := range out {
		if !gone[e.Ref] {
			kept = append(kept, e)
		}
	}
	return inventory.Normalize(kept)
}
