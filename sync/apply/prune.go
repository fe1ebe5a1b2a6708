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

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/plan"
)

// Prune deletes the plan's delete items: objects in the inventory that are no
// longer desired. It refuses (a *PruneRefusedError, nothing deleted) when the apply
// was not complete, and when it would leave the app without any object unless
// opts.AllowEmpty. It deletes only objects that still carry the app's ownership
// labels and not annotated object.PruneAnnotation: disabled (others are disowned:
// left in place), with the live UID and
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
		if len(stages[i]) == 0 {
			continue
		}
		if err := s.fenced(a.app); err != nil {
			return newChangeSet(changes), err
		}
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
	case pm.Annotations[object.PruneAnnotation] == object.PruneDisabled:
		// A Helm chart's CRD (crds/): never deleted, as Helm never deletes them.
		return done(ActionDisowned)
	case pm.DeletionTimestamp != nil:
		return done(ActionDeleted)
	}
	if it.Ref.Group == "" && it.Ref.Kind == "Namespace" {
		other, err := s.namespaceUser(ctx, app, it.Name)
		if err != nil {
			return failed(it.Ref, it.Version, OpGet, fmt.Errorf("prune %s: %w", it.Ref, err))
		}
		if other != "" {
			// Deleting it would delete the other app's objects with it.
			s.cfg.Logger.InfoContext(ctx, "namespace left in place: another app still has objects in it",
				"app", app, "namespace", it.Name, "otherApp", other)
			return done(ActionDisowned)
		}
	}
	if err := s.fencedWrite(); err != nil {
		return failed(it.Ref, it.Version, OpDelete, fmt.Errorf("prune %s: %w", it.Ref, err))
	}
	err = s.cfg.Client.Delete(ctx, pm,
		client.Preconditions{UID: &pm.UID, ResourceVersion: &pm.ResourceVersion},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return failed(it.Ref, it.Version, OpDelete, fmt.Errorf("prune %s: %w", it.Ref, err))
	}
	return done(ActionDeleted)
}

// AppLister lists the apps that have an inventory; *inventory.Store is one. Prune
// uses it, when the Store provides it, to keep a Namespace other apps still use.
type AppLister interface {
	Apps(ctx context.Context) ([]string, error)
}

// namespaceUser returns an app other than app whose inventory lists an object in
// namespace ns ("" when none), so that pruning app's Namespace never deletes another
// app's objects with it. A Store that cannot list apps answers "".
func (s *Syncer) namespaceUser(ctx context.Context, app, ns string) (string, error) {
	lister, ok := s.cfg.Store.(AppLister)
	if !ok {
		return "", nil
	}
	apps, err := lister.Apps(ctx)
	if err != nil {
		return "", fmt.Errorf("list inventories: %w", err)
	}
	for _, other := range apps {
		if other == app {
			continue
		}
		inv, err := s.cfg.Store.Load(ctx, other)
		if err != nil {
			return "", fmt.Errorf("inventory of app %q: %w", other, err)
		}
		for _, e := range inv.Entries {
			if e.Namespace == ns {
				return other, nil
			}
		}
	}
	return "", nil
}
