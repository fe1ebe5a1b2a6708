package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/plan"
)

// Prune deletes the plan's delete items: objects in the inventory that are no
// longer desired. It refuses (a *PruneRefusedError, nothing deleted) when the apply
// was not complete, and when it would leave the app without any object unless
// opts.AllowEmpty. It deletes only objects that still carry the app's ownership
// labels (others are disowned: left in place), with the live UID and
// resourceVersion as preconditions, resources first and Namespaces and CRDs last.
// Failures are per object; the error joins every *ObjectError.
func (s *Syncer) Prune(ctx context.Context, a *Applied, opts Options) (ChangeSet, error) {
	if a == nil || a.plan == nil {
		return ChangeSet{}, &PruneRefusedError{Reason: RefusedIncomplete}
	}
	var stages [numStages][]plan.Item
	n := 0
	for _, it := range a.plan.Items {
		if it.Action == plan.ActionDelete {
			stage := stageOf(it.Ref, it.Version)
			stages[stage] = append(stages[stage], it)
			n++
		}
	}
	if !a.complete {
		return ChangeSet{}, &PruneRefusedError{App: a.app, Reason: RefusedIncomplete, Objects: n}
	}
	if n > 0 && len(a.plan.Desired()) == 0 && !opts.AllowEmpty {
		return ChangeSet{}, &PruneRefusedError{App: a.app, Reason: RefusedEmpty, Objects: n}
	}
	var changes []Change
	for i := numStages - 1; i >= 0; i-- {
		changes = append(changes, s.pruneItems(ctx, a.app, stages[i])...)
	}
	cs := newChangeSet(changes)
	var errs []error
	for _, ch := range cs.Failed() {
		errs = append(errs, ch.Err)
	}
	return cs, errors.Join(errs...)
}

func (s *Syncer) pruneItems(ctx context.Context, app string, items []plan.Item) []Change {
	changes := make([]Change, len(items))
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			changes[i] = s.pruneOne(ctx, app, it)
			s.cfg.Logger.DebugContext(ctx, "object pruned", "object", it.Ref.String(),
				"action", changes[i].Action, "error", changes[i].Error)
		})
	}
	wg.Wait()
	return changes
}

// pruneOne deletes one object if it still carries app's ownership labels.
func (s *Syncer) pruneOne(ctx context.Context, app string, it plan.Item) Change {
	done := func(a Action) Change { return Change{Ref: it.Ref, Version: it.Version, Action: a} }
	pm := &metav1.PartialObjectMetadata{}
	pm.SetGroupVersionKind(schema.GroupVersionKind{Group: it.Group, Version: it.Version, Kind: it.Kind})
	err := s.cfg.Client.Get(ctx, types.NamespacedName{Namespace: it.Namespace, Name: it.Name}, pm)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return done(ActionDeleted)
	case err != nil:
		return failed(it.Ref, it.Version, OpGet, fmt.Errorf("prune %s: %w", it.Ref, err))
	case !s.cfg.Owner.Owns(pm.Labels, app):
		return done(ActionDisowned)
	case pm.DeletionTimestamp != nil:
		return done(ActionDeleted)
	}
	err = s.cfg.Client.Delete(ctx, pm,
		client.Preconditions{UID: &pm.UID, ResourceVersion: &pm.ResourceVersion},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return failed(it.Ref, it.Version, OpDelete, fmt.Errorf("prune %s: %w", it.Ref, err))
	}
	return done(ActionDeleted)
}
