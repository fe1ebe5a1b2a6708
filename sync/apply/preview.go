package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/plan"
)

// Plan previews a sync of app with opts without changing anything: the pairing of
// SyncApp's first step; then, for each object a sync may leave alone (opts.KeepDrift
// and a desired state the inventory records as applied, or a create-only object),
// the step applyOne would take (decide), with a dry-run that does not take ownership
// where that step needs one; then a server-side dry-run of every other object that
// is not skipped. Objects a sync keeps get plan.ActionKeep with their reason, and the
// fields that differ when known; the others' diffs are what the apply changes.
// Secret values are masked. Dry-run failures are reported in the items and returned
// joined.
func (s *Syncer) Plan(ctx context.Context, app string, desired []*unstructured.Unstructured, opts Options) (*plan.Plan, error) {
	objs, err := s.prepare(app, desired)
	if err != nil {
		return nil, err
	}
	inv, err := s.cfg.Store.Load(ctx, app)
	if err != nil {
		return nil, err
	}
	p, err := s.build(ctx, app, objs, inv)
	if err != nil {
		return nil, err
	}
	keptErr := s.previewKept(ctx, p, opts)
	return p, errors.Join(keptErr, s.differ.Refine(ctx, p))
}

// previewKept settles, in place, the create and update items a sync may keep; it
// leaves the others to Refine.
func (s *Syncer) previewKept(ctx context.Context, p *plan.Plan, opts Options) error {
	sem := make(chan struct{}, s.cfg.Concurrency)
	errs := make([]error, len(p.Items))
	var wg sync.WaitGroup
	for i := range p.Items {
		it := &p.Items[i]
		if it.Action != plan.ActionCreate && it.Action != plan.ActionUpdate {
			continue
		}
		if !(opts.KeepDrift && recordedAsDesired(it)) && !object.IsCreateOnly(it.Object) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.previewOne(ctx, p.App, it, opts)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// previewOne reads the live object and settles it as applyOne would.
func (s *Syncer) previewOne(ctx context.Context, app string, it *plan.Item, opts Options) error {
	fail := func(err error) error {
		it.Reason, it.Error, it.Immutable = plan.ReasonDryRun, err.Error(), plan.IsImmutable(err)
		return fmt.Errorf("app %q: preview %s: %w", app, it.Ref, err)
	}
	live, err := s.differ.Live(ctx, it.Object)
	switch {
	case meta.IsNoMatchError(err):
		return nil // not served yet (its CRD is in the plan): Refine settles it
	case err != nil:
		return fail(err)
	}
	switch decide(it, live != nil, opts) {
	case stepKeepDeleted:
		it.Action, it.Reason = plan.ActionKeep, plan.ReasonDeletedKept
	case stepKeepCreateOnly:
		it.Action, it.Reason = plan.ActionKeep, plan.ReasonCreateOnly
	case stepApplyOwned:
		merged, err := s.differ.DryRunOwned(ctx, it.Object)
		switch {
		case apierrors.IsConflict(err):
			it.Action, it.Reason = plan.ActionKeep, plan.ReasonDriftKept
			// What drift: correct would take back: the kept drift, shown when a
			// forced dry-run can tell it.
			if forced, err := s.differ.DryRun(ctx, it.Object); err == nil {
				it.Diff = s.differ.Compare(live, forced)
			}
		case err != nil:
			return fail(err)
		default:
			it.Reason, it.Diff = plan.ReasonDryRun, s.differ.Compare(live, merged)
			it.Action = plan.ActionUpdate
			if len(it.Diff) == 0 {
				it.Action = plan.ActionUnchanged
			}
		}
	}
	return nil
}
