package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

// Action is what a sync does to one object.
type Action string

// Plan actions.
const (
	// ActionCreate: the object does not exist yet (before a dry-run: Outpost has no
	// confirmed record of applying it).
	ActionCreate Action = "create"
	// ActionUpdate: applying the object changes it (before a dry-run: the desired
	// object or the live one changed since the recorded apply).
	ActionUpdate Action = "update"
	// ActionUnchanged: applying the object would change nothing; it is not sent.
	ActionUnchanged Action = "unchanged"
	// ActionDelete: the object is in the inventory but no longer desired.
	ActionDelete Action = "delete"
	// ActionKeep: the object differs from the desired state, or is missing, but a
	// sync leaves it as it is (see ReasonDriftKept, ReasonDeletedKept,
	// ReasonCreateOnly); only a preview (apply.Syncer.Plan) sets it. Diff, when set,
	// lists the fields that differ: what drift: correct would take back.
	ActionKeep Action = "keep"
)

// Reason says why an item got its action.
type Reason string

// Plan reasons.
const (
	// ReasonNew: the object is not in the inventory.
	ReasonNew Reason = "new"
	// ReasonUnconfirmed: the object is in the inventory without a record: its apply
	// started but was never confirmed.
	ReasonUnconfirmed Reason = "unconfirmed"
	// ReasonDesiredChanged: the desired object's hash differs from the recorded one.
	ReasonDesiredChanged Reason = "desired-changed"
	// ReasonLiveChanged: the live resourceVersion differs from the recorded one.
	ReasonLiveChanged Reason = "live-changed"
	// ReasonLiveMissing: the object is not live, or no longer carries the app's
	// ownership labels.
	ReasonLiveMissing Reason = "live-missing"
	// ReasonLiveUnknown: the live state was not observed.
	ReasonLiveUnknown Reason = "live-unknown"
	// ReasonRecorded: the desired hash and the live resourceVersion both match the
	// recorded apply; the object is skipped without any request.
	ReasonRecorded Reason = "recorded"
	// ReasonDryRun: a server-side dry-run decided the action.
	ReasonDryRun Reason = "dry-run"
	// ReasonNotDesired: the object is in the inventory but no longer desired.
	ReasonNotDesired Reason = "not-desired"
	// ReasonDriftKept: the desired object is the one last applied and another field
	// manager changed a field it sets; the app's drift: report keeps the change.
	ReasonDriftKept Reason = "drift-kept"
	// ReasonDeletedKept: the desired object is the one last applied and someone
	// deleted it; the app's drift: report keeps it deleted.
	ReasonDeletedKept Reason = "deleted-kept"
	// ReasonCreateOnly: the object is create-only (object.ApplyCreateOnly) and exists.
	ReasonCreateOnly Reason = "create-only"
)

// Item is the plan for one object.
type Item struct {
	object.Ref
	// Version is the API version to apply (or delete) the object with.
	Version string `json:"version"`
	// Action is what the sync does to the object.
	Action Action `json:"action"`
	// Reason says why.
	Reason Reason `json:"reason"`
	// Hash is the desired object's hash; empty for deletes.
	Hash string `json:"hash,omitempty"`
	// Diff lists the changed fields, filled by a dry-run (Differ.Refine).
	Diff []FieldChange `json:"diff,omitempty"`
	// Error is why the dry-run failed, if it did.
	Error string `json:"error,omitempty"`
	// Immutable is set when the dry-run failed on an immutable field.
	Immutable bool `json:"immutable,omitempty"`

	// Object is the desired object; nil for deletes.
	Object *unstructured.Unstructured `json:"-"`
	// Recorded is the inventory's record of the object's last apply, if any.
	Recorded inventory.Record `json:"-"`
}

// Plan pairs an app's desired objects with its inventory and live state.
type Plan struct {
	// App is the app's name.
	App string `json:"app"`
	// Items are sorted by Ref.
	Items []Item `json:"items"`
}

// Counts is the number of items per action.
type Counts struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Unchanged int `json:"unchanged"`
	Delete    int `json:"delete"`
	Keep      int `json:"keep"`
	// Failed counts items whose dry-run failed.
	Failed int `json:"failed"`
}

// Counts counts the items per action.
func (p *Plan) Counts() Counts {
	var c Counts
	for _, it := range p.Items {
		switch it.Action {
		case ActionCreate:
			c.Create++
		case ActionUpdate:
			c.Update++
		case ActionUnchanged:
			c.Unchanged++
		case ActionDelete:
			c.Delete++
		case ActionKeep:
			c.Keep++
		}
		if it.Error != "" {
			c.Failed++
		}
	}
	return c
}

// Desired returns the Refs of the desired objects (every item but deletes).
func (p *Plan) Desired() []object.Ref {
	var out []object.Ref
	for _, it := range p.Items {
		if it.Action != ActionDelete {
			out = append(out, it.Ref)
		}
	}
	return out
}

// Input is what Build pairs.
type Input struct {
	// App is the app's name.
	App string
	// Desired are the objects exactly as they will be applied.
	Desired []*unstructured.Unstructured
	// Inventory is the app's stored inventory.
	Inventory []inventory.Entry
	// Live maps each observed object that exists and carries the app's ownership
	// labels to its resourceVersion. Nil means not observed: no object is skipped.
	Live map[object.Ref]string
}

// DuplicateError reports two desired objects with the same identity.
type DuplicateError struct {
	// Ref is the duplicated identity.
	Ref object.Ref
}

// Error implements error.
func (e *DuplicateError) Error() string {
	return fmt.Sprintf("object %s is desired twice", e.Ref)
}

// Build pairs desired objects with the inventory and the live resourceVersions:
//
//   - not in the inventory → create (new); in it without a record → create (unconfirmed)
//   - hash differs from the record → update (desired-changed)
//   - not live → create (live-missing); live version differs → update (live-changed)
//   - otherwise → unchanged (recorded): skipped with no request at all
//   - in the inventory but not desired → delete
//
// Create and update are provisional until a dry-run (Differ.Refine) or the apply
// settles them. Build is pure.
func Build(in Input) (*Plan, error) {
	stored := make(map[object.Ref]inventory.Entry, len(in.Inventory))
	for _, e := range in.Inventory {
		stored[e.Ref] = e
	}
	p := &Plan{App: in.App}
	seen := make(map[object.Ref]bool, len(in.Desired))
	for _, obj := range in.Desired {
		ref := object.RefOf(obj)
		if ref.Kind == "" || ref.Name == "" || obj.GetAPIVersion() == "" {
			return nil, fmt.Errorf("desired object %s: apiVersion, kind and name are required", ref)
		}
		if seen[ref] {
			return nil, &DuplicateError{Ref: ref}
		}
		seen[ref] = true
		hash, err := Hash(obj)
		if err != nil {
			return nil, err
		}
		it := Item{Ref: ref, Version: obj.GroupVersionKind().Version, Hash: hash, Object: obj}
		e, ok := stored[ref]
		it.Recorded = e.Record
		it.Action, it.Reason = pair(e, ok, hash, in.Live)
		p.Items = append(p.Items, it)
	}
	for _, e := range inventory.Stale(in.Inventory, slices.Collect(maps.Keys(seen))) {
		p.Items = append(p.Items, Item{Ref: e.Ref, Version: e.Version, Action: ActionDelete,
			Reason: ReasonNotDesired, Recorded: e.Record})
	}
	slices.SortFunc(p.Items, func(a, b Item) int { return a.Ref.Compare(b.Ref) })
	return p, nil
}

// pair decides the provisional action of a desired object.
func pair(e inventory.Entry, stored bool, hash string, live map[object.Ref]string) (Action, Reason) {
	switch {
	case !stored:
		return ActionCreate, ReasonNew
	case e.Record.IsZero():
		return ActionCreate, ReasonUnconfirmed
	case e.Hash != hash:
		return ActionUpdate, ReasonDesiredChanged
	case live == nil:
		return ActionUpdate, ReasonLiveUnknown
	}
	rv, ok := live[e.Ref]
	switch {
	case !ok:
		return ActionCreate, ReasonLiveMissing
	case rv != e.ResourceVersion:
		return ActionUpdate, ReasonLiveChanged
	default:
		return ActionUnchanged, ReasonRecorded
	}
}

// DefinedKinds returns the kinds defined by the CRDs among the plan's desired objects.
func (p *Plan) DefinedKinds() map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, it := range p.Items {
		if it.Object == nil || it.Group != "apiextensions.k8s.io" || it.Kind != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(it.Object.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(it.Object.Object, "spec", "names", "kind")
		out[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	return out
}

// Hash returns a hash of the object exactly as it will be applied: 32 hex digits
// of the SHA-256 of its JSON encoding (map keys sorted, so equal objects hash equally).
func Hash(obj *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", object.RefOf(obj), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// Observable returns the inventory entries of desired objects that have a record:
// the only objects whose live resourceVersion can let a sync skip them.
func Observable(desired []*unstructured.Unstructured, stored []inventory.Entry) []inventory.Entry {
	want := make(map[object.Ref]bool, len(desired))
	for _, obj := range desired {
		want[object.RefOf(obj)] = true
	}
	var out []inventory.Entry
	for _, e := range stored {
		if want[e.Ref] && !e.Record.IsZero() {
			out = append(out, e)
		}
	}
	return out
}
