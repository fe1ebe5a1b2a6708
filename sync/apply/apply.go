package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ssaobject "github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/plan"
)

// Apply stages, applied in this order and pruned in the reverse one.
const (
	// stageDefinitions holds CRDs, Namespaces and ClusterRoles; CRDs are waited
	// for until Established before the next stage.
	stageDefinitions = iota
	// stageClasses holds class definitions (StorageClass, IngressClass, …).
	stageClasses
	// stageResources holds everything else.
	stageResources
	numStages
)

// stageOf returns the stage of an object of the given kind.
func stageOf(ref object.Ref, version string) int {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: version, Kind: ref.Kind})
	switch {
	case utils.IsClusterDefinition(u):
		return stageDefinitions
	case utils.IsClassDefinition(u):
		return stageClasses
	default:
		return stageResources
	}
}

var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// Applied is the outcome of Syncer.Apply. Only Apply makes one, and Prune accepts
// nothing else: prune can only follow an apply, and runs only after a complete one.
type Applied struct {
	app      string
	plan     *plan.Plan
	changes  ChangeSet
	complete bool
}

// App returns the app's name.
func (a *Applied) App() string { return a.app }

// Changes returns what the apply did to each desired object.
func (a *Applied) Changes() ChangeSet { return a.changes }

// Complete reports whether every desired object was applied (or skipped as
// unchanged) without error.
func (a *Applied) Complete() bool { return a.complete }

// Apply applies the plan's create, update and unchanged items in stages: CRDs,
// Namespaces and ClusterRoles first (then waits for the CRDs to be Established),
// class definitions next, everything else last; at most Config.Concurrency
// objects at once. Unchanged items are skipped without a request. Per object:
// read the live object; create it with one apply if missing; otherwise dry-run and
// apply only when the dry-run changes a field. A failed object does not stop the
// others; the returned error joins every *ObjectError, and the Applied is never nil.
func (s *Syncer) Apply(ctx context.Context, p *plan.Plan, opts Options) (*Applied, error) {
	var stages [numStages][]*plan.Item
	var changes []Change
	for i := range p.Items {
		it := &p.Items[i]
		switch it.Action {
		case plan.ActionDelete:
		case plan.ActionUnchanged:
			changes = append(changes, Change{Ref: it.Ref, Version: it.Version, Action: ActionSkipped, record: it.Recorded})
		default:
			n := stageOf(it.Ref, it.Version)
			stages[n] = append(stages[n], it)
		}
	}
	crdKinds := p.DefinedKinds()
	var fenceErr error
	for n, items := range stages {
		if len(items) > 0 && fenceErr == nil {
			fenceErr = s.fenced(p.App)
		}
		if fenceErr != nil {
			for _, it := range items {
				changes = append(changes, failed(it.Ref, it.Version, OpApply, fenceErr))
			}
			continue
		}
		got := s.applyItems(ctx, p.App, items, opts, crdKinds)
		if n == stageDefinitions {
			s.waitForCRDs(ctx, got)
		}
		changes = append(changes, got...)
	}
	a := &Applied{app: p.App, plan: p, changes: newChangeSet(changes)}
	var errs []error
	for _, ch := range a.changes.Failed() {
		errs = append(errs, ch.Err)
	}
	a.complete = len(errs) == 0 && ctx.Err() == nil
	return a, errors.Join(errs...)
}

// applyItems applies items with bounded concurrency; changes are in items' order.
func (s *Syncer) applyItems(ctx context.Context, app string, items []*plan.Item, opts Options, crdKinds map[schema.GroupKind]bool) []Change {
	changes := make([]Change, len(items))
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	absent := s.absentObjects(ctx, items)
	for i, it := range items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			h := hints{kindPending: crdKinds[schema.GroupKind{Group: it.Group, Kind: it.Kind}], absent: absent[it.Ref]}
			changes[i] = s.applyOne(ctx, app, it, opts, h)
			s.cfg.Logger.DebugContext(ctx, "object applied", "object", it.Ref.String(),
				"action", changes[i].Action, "error", changes[i].Error)
		})
	}
	wg.Wait()
	return changes
}

// hints are what a sync knows about an object before touching it.
type hints struct {
	// kindPending: the object's kind is defined by a CRD of the same sync, so
	// the apiserver may not serve it yet.
	kindPending bool
	// absent: a LIST just showed that the object does not exist.
	absent bool
}

// applyOne applies one object: a missing object is created with one apply; an
// existing one is read, checked for ownership (mayTake), and handled as decide says:
// kept, applied without taking other managers' fields (applyKeepingDrift), or
// dry-run and applied only if the dry-run changes a field.
func (s *Syncer) applyOne(ctx context.Context, app string, it *plan.Item, opts Options, h hints) Change {
	var live *unstructured.Unstructured
	if !h.absent {
		err := s.whenServed(ctx, h.kindPending, func() (err error) {
			live, err = s.differ.Live(ctx, it.Object)
			return err
		})
		if err != nil {
			return failed(it.Ref, it.Version, OpGet, err)
		}
	}
	if live != nil {
		if err := mayTake(s.cfg.Owner, app, it, live, opts); err != nil {
			return Change{Ref: it.Ref, Version: it.Version, Action: ActionFailed, Error: err.Error(),
				Err: &ObjectError{Object: it.Ref, Op: OpAdopt, Err: err}}
		}
	}
	switch decide(it, live != nil, opts) {
	case stepKeepDeleted:
		// Deleted by someone after Outpost applied it: drift, which the app keeps.
		return Change{Ref: it.Ref, Version: it.Version, Action: ActionKept, record: it.Recorded}
	case stepCreate:
		created, err := s.serverApply(ctx, it.Object)
		if err != nil {
			return failed(it.Ref, it.Version, OpApply, err)
		}
		return s.applied(it, ActionCreated, created, nil)
	case stepKeepCreateOnly:
		return s.applied(it, ActionKept, live, nil)
	case stepApplyOwned:
		return s.applyKeepingDrift(ctx, it, live)
	}
	merged, err := s.differ.DryRun(ctx, it.Object)
	if err != nil {
		if opts.Force && plan.IsImmutable(err) {
			return s.recreate(ctx, it, live)
		}
		return failed(it.Ref, it.Version, OpDryRun, err)
	}
	diff := s.differ.Compare(live, merged)
	if len(diff) == 0 {
		return s.applied(it, ActionUnchanged, live, nil)
	}
	configured, err := s.serverApply(ctx, it.Object)
	if err != nil {
		if opts.Force && plan.IsImmutable(err) {
			return s.recreate(ctx, it, live)
		}
		return failed(it.Ref, it.Version, OpApply, err)
	}
	return s.applied(it, ActionConfigured, configured, diff)
}

// step is how a sync handles one desired object once it knows whether the object
// exists.
type step int

const (
	// stepApply: dry-run taking ownership of every field the object sets, and apply
	// when that changes a field.
	stepApply step = iota
	// stepCreate: the object is missing; create it with one apply.
	stepCreate
	// stepKeepDeleted: the object is missing, deleted after Outpost applied exactly
	// this desired state, and the app keeps drift: it stays deleted.
	stepKeepDeleted
	// stepKeepCreateOnly: a create-only object that exists: never written.
	stepKeepCreateOnly
	// stepApplyOwned: the desired state is the one applied and the app keeps drift:
	// apply only what no other field manager took; a conflict keeps the object
	// (applyKeepingDrift).
	stepApplyOwned
)

// decide chooses the step of a desired object from its plan item, whether it exists,
// and the app's options. It is pure: the one place where the drift policy and
// create-only turn into what a sync does, shared by applyOne and the preview (Plan).
func decide(it *plan.Item, exists bool, opts Options) step {
	keep := opts.KeepDrift && recordedAsDesired(it)
	switch {
	case !exists && keep:
		return stepKeepDeleted
	case !exists:
		return stepCreate
	case object.IsCreateOnly(it.Object):
		return stepKeepCreateOnly
	case keep:
		return stepApplyOwned
	}
	return stepApply
}

// recordedAsDesired reports whether the inventory records a confirmed apply of exactly
// the desired object: whatever differs live was changed after Outpost applied it.
func recordedAsDesired(it *plan.Item) bool {
	return !it.Recorded.IsZero() && it.Recorded.Hash == it.Hash
}

// applyKeepingDrift applies an existing object whose desired state Outpost already
// applied, for an app that keeps drift: a dry-run without taking ownership conflicts
// when another field manager took a field whose value Git sets differently, and then
// the object is kept as it is. Without a conflict, a difference can only be in fields
// Outpost's own manager still owns (a stale write of a former leader, or a field no
// one owns any more): those are applied.
func (s *Syncer) applyKeepingDrift(ctx context.Context, it *plan.Item, live *unstructured.Unstructured) Change {
	merged, err := s.differ.DryRunOwned(ctx, it.Object)
	switch {
	case apierrors.IsConflict(err):
		return Change{Ref: it.Ref, Version: it.Version, Action: ActionKept, record: it.Recorded}
	case err != nil:
		return failed(it.Ref, it.Version, OpDryRun, err)
	}
	diff := s.differ.Compare(live, merged)
	if len(diff) == 0 {
		return s.applied(it, ActionUnchanged, live, nil)
	}
	configured, err := s.serverApply(ctx, it.Object)
	if err != nil {
		return failed(it.Ref, it.Version, OpApply, err)
	}
	return s.applied(it, ActionConfigured, configured, diff)
}

// mayTake refuses to apply an existing object that another app owns, or that Outpost
// does not manage and the app did not opt in to adopt. An object whose apply the app's
// inventory recorded stays the app's even if someone removed its label; one listed
// there unconfirmed (the inventory is saved before the apply) does not count, or a
// refused adoption would succeed on the next cycle.
func mayTake(owner object.Owner, app string, it *plan.Item, live *unstructured.Unstructured, opts Options) error {
	other := owner.AppOf(live.GetLabels())
	switch {
	case other == app:
		return nil
	case other != "":
		return &OwnershipError{Object: it.Ref, App: app, Owner: other}
	case !it.Recorded.IsZero():
		return nil // applied by this app before: its own object
	case opts.Adopt || it.Object.GetAnnotations()[AdoptAnnotation] == "true":
		return nil
	}
	return &OwnershipError{Object: it.Ref, App: app}
}

// applied returns a successful change recording after's resourceVersion.
func (s *Syncer) applied(it *plan.Item, action Action, after *unstructured.Unstructured, diff []plan.FieldChange) Change {
	return Change{Ref: it.Ref, Version: it.Version, Action: action, Diff: diff,
		record: inventory.Record{Hash: it.Hash, ResourceVersion: after.GetResourceVersion()}}
}

// absentObjects returns which of the items the plan expects to be new do not
// exist, by one metadata-only LIST per kind and namespace, so that they are created
// with a single request each (one created by someone else in the meantime is
// adopted by that apply). A kind that cannot be listed (not served yet, or
// forbidden) is left out: its objects are read one by one.
func (s *Syncer) absentObjects(ctx context.Context, items []*plan.Item) map[object.Ref]bool {
	byKey := map[listKey][]*plan.Item{}
	for _, it := range items {
		switch it.Reason {
		case plan.ReasonNew, plan.ReasonUnconfirmed, plan.ReasonLiveMissing:
			k := listKey{gk: schema.GroupKind{Group: it.Group, Kind: it.Kind}, namespace: it.Namespace}
			byKey[k] = append(byKey[k], it)
		}
	}
	absent := map[object.Ref]bool{}
	for k, its := range byKey {
		exists := map[string]bool{}
		err := listMetadata(ctx, s.cfg.Client, k, its[0].Version, listPageSize, nil, func(pm *metav1.PartialObjectMetadata) {
			exists[pm.Name] = true
		})
		if err != nil {
			s.cfg.Logger.DebugContext(ctx, "cannot list to find new objects; reading them one by one",
				"kind", k.gk.String(), "namespace", k.namespace, "error", err)
			continue
		}
		for _, it := range its {
			if !exists[it.Name] {
				absent[it.Ref] = true
			}
		}
	}
	return absent
}

// serverApply applies obj with server-side apply, taking ownership of conflicting
// fields, and returns the stored object.
func (s *Syncer) serverApply(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if err := s.fencedWrite(); err != nil {
		return nil, fmt.Errorf("apply %s: %w", object.RefOf(obj), err)
	}
	out := obj.DeepCopy()
	err := s.cfg.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(out),
		client.FieldOwner(s.cfg.Owner.FieldManager), client.ForceOwnership)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", object.RefOf(obj), err)
	}
	return out, nil
}

// recreate deletes live (only if it is still the same object), waits until it is
// gone and creates the desired object.
func (s *Syncer) recreate(ctx context.Context, it *plan.Item, live *unstructured.Unstructured) Change {
	uid := live.GetUID()
	if err := s.fencedWrite(); err != nil {
		return failed(it.Ref, it.Version, OpDelete, fmt.Errorf("recreate %s: delete: %w", it.Ref, err))
	}
	err := s.cfg.Client.Delete(ctx, live, client.Preconditions{UID: &uid},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return failed(it.Ref, it.Version, OpDelete, fmt.Errorf("recreate %s: delete: %w", it.Ref, err))
	}
	err = wait.PollUntilContextTimeout(ctx, s.cfg.WaitInterval, s.cfg.WaitTimeout, true,
		func(ctx context.Context) (bool, error) {
			cur, err := s.differ.Live(ctx, it.Object)
			return cur == nil || cur.GetUID() != uid, err
		})
	if err != nil {
		return failed(it.Ref, it.Version, OpWait, fmt.Errorf("recreate %s: wait until deleted: %w", it.Ref, err))
	}
	created, err := s.serverApply(ctx, it.Object)
	if err != nil {
		return failed(it.Ref, it.Version, OpApply, fmt.Errorf("recreate %s: %w", it.Ref, err))
	}
	return s.applied(it, ActionRecreated, created, nil)
}

// whenServed runs fn; if retry is set and fn fails because the object's kind is not
// served yet (its CRD was just created), it runs fn again until it is or the wait
// times out.
func (s *Syncer) whenServed(ctx context.Context, retry bool, fn func() error) error {
	err := fn()
	if !retry || !meta.IsNoMatchError(err) {
		return err
	}
	waitErr := wait.PollUntilContextTimeout(ctx, s.cfg.WaitInterval, s.cfg.WaitTimeout, false,
		func(context.Context) (bool, error) {
			err = fn()
			return !meta.IsNoMatchError(err), nil
		})
	if waitErr != nil {
		return fmt.Errorf("kind not served after %s: %w", s.cfg.WaitTimeout, err)
	}
	return err
}

// waitForCRDs waits until the CRDs among changes are Established, then records
// their resourceVersion as it is after the apiserver set their status. A CRD that
// does not get Established is marked failed.
func (s *Syncer) waitForCRDs(ctx context.Context, changes []Change) {
	var set ssaobject.ObjMetadataSet
	var idx []int
	for i, ch := range changes {
		if ch.Action != ActionFailed && ch.Group == crdGroupKind.Group && ch.Kind == crdGroupKind.Kind {
			set = append(set, ssaobject.ObjMetadata{GroupKind: crdGroupKind, Name: ch.Name})
			idx = append(idx, i)
		}
	}
	if len(set) == 0 {
		return
	}
	start := time.Now()
	err := s.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: s.cfg.WaitInterval, Timeout: s.cfg.WaitTimeout})
	s.cfg.Logger.DebugContext(ctx, "waited for CRDs", "crds", len(set), "duration", time.Since(start), "error", err)
	for _, i := range idx {
		ch := &changes[i]
		if err != nil {
			*ch = failed(ch.Ref, ch.Version, OpWait, fmt.Errorf("wait for CRD %s to be established: %w", ch.Name, err))
			continue
		}
		rv, err := s.metadataVersion(ctx, ch.Ref, ch.Version)
		if err != nil {
			*ch = failed(ch.Ref, ch.Version, OpGet, err)
			continue
		}
		ch.record.ResourceVersion = rv
	}
}

// metadataVersion reads an object's resourceVersion with a metadata-only GET.
func (s *Syncer) metadataVersion(ctx context.Context, ref object.Ref, version string) (string, error) {
	pm := &metav1.PartialObjectMetadata{}
	pm.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: version, Kind: ref.Kind})
	if err := s.cfg.Client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, pm); err != nil {
		return "", fmt.Errorf("get %s: %w", ref, err)
	}
	return pm.ResourceVersion, nil
}
