package plan

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"
)

// DifferOptions configure a Differ.
type DifferOptions struct {
	// FieldManager is the server-side apply field manager; default
	// object.DefaultFieldManager (apply passes its Owner's).
	FieldManager string
	// MaskKey keys the HMAC that masks secret values (see Mask); default: 32 random
	// bytes drawn once per Differ, so masks are comparable within a process only.
	MaskKey []byte
	// Concurrency bounds the dry-runs Refine runs at once; default 8.
	Concurrency int
}

func (o DifferOptions) withDefaults() (DifferOptions, error) {
	if o.FieldManager == "" {
		o.FieldManager = object.DefaultFieldManager
	}
	if o.Concurrency < 1 {
		o.Concurrency = 8
	}
	if len(o.MaskKey) == 0 {
		o.MaskKey = make([]byte, 32)
		if _, err := rand.Read(o.MaskKey); err != nil {
			return o, fmt.Errorf("draw mask key: %w", err)
		}
	}
	return o, nil
}

// Differ runs server-side dry-runs to tell exactly what an apply would change.
type Differ struct {
	c    client.Client
	opts DifferOptions
}

// NewDiffer returns a Differ that talks to the apiserver through c.
func NewDiffer(c client.Client, opts DifferOptions) (*Differ, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Differ{c: c, opts: opts}, nil
}

// FieldManager returns the field manager the Differ dry-runs as.
func (d *Differ) FieldManager() string { return d.opts.FieldManager }

// Live reads the live object named by obj; nil when it does not exist.
func (d *Differ) Live(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	if err := d.c.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get %s: %w", object.RefOf(obj), err)
	}
	return live, nil
}

// DryRun returns the object the apiserver would store if obj were applied now.
func (d *Differ) DryRun(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	merged := obj.DeepCopy()
	err := d.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(merged),
		client.FieldOwner(d.opts.FieldManager), client.ForceOwnership, client.DryRunAll)
	if err != nil {
		return nil, fmt.Errorf("dry-run apply %s: %w", object.RefOf(obj), err)
	}
	return merged, nil
}

// DryRunOwned is DryRun without taking ownership: it fails with a Conflict
// (apierrors.IsConflict) when another field manager owns a field obj sets to a
// different value.
func (d *Differ) DryRunOwned(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	merged := obj.DeepCopy()
	err := d.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(merged),
		client.FieldOwner(d.opts.FieldManager), client.DryRunAll)
	if err != nil {
		return nil, fmt.Errorf("dry-run apply %s: %w", object.RefOf(obj), err)
	}
	return merged, nil
}

// Compare is Compare with the Differ's mask key.
func (d *Differ) Compare(live, merged *unstructured.Unstructured) []FieldChange {
	return Compare(live, merged, d.opts.MaskKey)
}

// ObjectDiff is what applying one object would do.
type ObjectDiff struct {
	// Action is create, update or unchanged.
	Action Action
	// Live is the live object; nil when the action is create.
	Live *unstructured.Unstructured
	// Changes are the fields an update changes, secret values masked.
	Changes []FieldChange
}

// Diff reads the live object and dry-runs obj: create when it does not exist
// (the dry-run still validates it), update with the changed fields, or unchanged.
func (d *Differ) Diff(ctx context.Context, obj *unstructured.Unstructured) (*ObjectDiff, error) {
	live, err := d.Live(ctx, obj)
	if err != nil {
		return nil, err
	}
	merged, err := d.DryRun(ctx, obj)
	if err != nil {
		return nil, err
	}
	if live == nil {
		return &ObjectDiff{Action: ActionCreate}, nil
	}
	changes := d.Compare(live, merged)
	if len(changes) == 0 {
		return &ObjectDiff{Action: ActionUnchanged, Live: live}, nil
	}
	return &ObjectDiff{Action: ActionUpdate, Live: live, Changes: changes}, nil
}

// Refine dry-runs every create and update item of p not yet settled by a dry-run
// (Reason ReasonDryRun), in place: it settles the action, fills Diff, or records the
// failure in Error and Immutable. An object
// whose kind is defined by a CRD of the same plan cannot be dry-run before that CRD
// exists; it stays a create. Refine returns the dry-run errors, joined.
func (d *Differ) Refine(ctx context.Context, p *Plan) error {
	crdKinds := p.DefinedKinds()
	sem := make(chan struct{}, d.opts.Concurrency)
	errs := make([]error, len(p.Items))
	var wg sync.WaitGroup
	for i := range p.Items {
		it := &p.Items[i]
		if it.Action != ActionCreate && it.Action != ActionUpdate || it.Reason == ReasonDryRun {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = d.refine(ctx, it, crdKinds)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (d *Differ) refine(ctx context.Context, it *Item, crdKinds map[schema.GroupKind]bool) error {
	od, err := d.Diff(ctx, it.Object)
	if err != nil {
		if meta.IsNoMatchError(err) && crdKinds[schema.GroupKind{Group: it.Group, Kind: it.Kind}] {
			it.Action, it.Reason = ActionCreate, ReasonNew
			return nil
		}
		it.Error, it.Immutable = err.Error(), IsImmutable(err)
		return err
	}
	it.Action, it.Reason, it.Diff = od.Action, ReasonDryRun, od.Changes
	return nil
}

// immutableMessage matches the apiserver's and admission webhooks' wording for a
// change to a field that cannot change.
var immutableMessage = regexp.MustCompile(`(?i)(field is immutable|is immutable|immutable field|may not change once set|cannot be changed|updates to .* are forbidden)`)

// IsImmutable reports whether err is an apiserver refusal to change an immutable
// field (HTTP 422 Invalid, or a webhook's denial, with the usual wording). A mere
// validation error is not immutable, so a forced recreate never deletes an object
// that could not be recreated anyway.
func IsImmutable(err error) bool {
	if err == nil {
		return false
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) && !apierrors.IsBadRequest(err) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				if immutableMessage.MatchString(c.Message) {
					return true
				}
			}
		}
	}
	return immutableMessage.MatchString(err.Error())
}
