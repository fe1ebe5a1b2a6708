package apply

import (
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-gitops/outpost/sync/object"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/plan"
)

// Action is what a sync did to one object.
type Action string

// Sync actions.
const (
	// ActionCreated: the object did not exist and was created.
	ActionCreated Action = "created"
	// ActionConfigured: the object existed and the apply changed it.
	ActionConfigured Action = "configured"
	// ActionRecreated: an immutable field changed; with Options.Force the object was
	// deleted and created again.
	ActionRecreated Action = "recreated"
	// ActionUnchanged: a dry-run showed the apply would change nothing; not written.
	ActionUnchanged Action = "unchanged"
	// ActionSkipped: the desired hash and live resourceVersion still match the
	// recorded apply; no request was made for the object.
	ActionSkipped Action = "skipped"
	// ActionKept: the object differs from Git, or is missing, because of a change made
	// outside Outpost that the app keeps (Options.KeepDrift, drift: report), or it is
	// create-only (object.ApplyCreateOnly) and exists: not written.
	ActionKept Action = "kept"
	// ActionDeleted: the object left the desired set and was pruned (or was gone).
	ActionDeleted Action = "deleted"
	// ActionDisowned: the object left the desired set but no longer carries this
	// app's ownership labels: left in place and dropped from the inventory.
	ActionDisowned Action = "disowned"
	// ActionFailed: see the entry's error.
	ActionFailed Action = "failed"
)

// Change is what a sync did to one object.
type Change struct {
	object.Ref
	// Version is the API version used.
	Version string `json:"version"`
	// Action is what was done.
	Action Action `json:"action"`
	// Diff lists the fields a configured object changed; secret values masked.
	Diff []plan.FieldChange `json:"diff,omitempty"`
	// Error describes a failure.
	Error string `json:"error,omitempty"`
	// Immutable is set when the failure is a change to an immutable field.
	Immutable bool `json:"immutable,omitempty"`
	// Err is the failure, an *ObjectError; nil unless Action is failed.
	Err error `json:"-"`

	// record is the inventory record after a successful apply.
	record inventory.Record
}

// Recorded is the inventory record of a successful apply, or of a skipped object the
// one it still holds: the desired hash and the object's resourceVersion right after
// Outpost wrote it. Zero for a failed change and for prune's.
func (c Change) Recorded() inventory.Record { return c.record }

// Counts is the number of objects per action.
type Counts struct {
	Created    int `json:"created"`
	Configured int `json:"configured"`
	Recreated  int `json:"recreated"`
	Unchanged  int `json:"unchanged"`
	Skipped    int `json:"skipped"`
	Kept       int `json:"kept"`
	Deleted    int `json:"deleted"`
	Disowned   int `json:"disowned"`
	Failed     int `json:"failed"`
}

// ChangeSet is what a sync did to each object, sorted by Ref, with counts.
type ChangeSet struct {
	// Entries has one change per object.
	Entries []Change `json:"entries"`
	// Counts counts Entries per action.
	Counts Counts `json:"counts"`
}

// newChangeSet sorts the changes and counts them.
func newChangeSet(changes []Change) ChangeSet {
	entries := slices.Clone(changes)
	slices.SortStableFunc(entries, func(a, b Change) int { return a.Ref.Compare(b.Ref) })
	var c Counts
	for _, e := range entries {
		switch e.Action {
		case ActionCreated:
			c.Created++
		case ActionConfigured:
			c.Configured++
		case ActionRecreated:
			c.Recreated++
		case ActionUnchanged:
			c.Unchanged++
		case ActionSkipped:
			c.Skipped++
		case ActionKept:
			c.Kept++
		case ActionDeleted:
			c.Deleted++
		case ActionDisowned:
			c.Disowned++
		case ActionFailed:
			c.Failed++
		}
	}
	return ChangeSet{Entries: entries, Counts: c}
}

// Failed returns the failed changes.
func (cs ChangeSet) Failed() []Change {
	var out []Change
	for _, e := range cs.Entries {
		if e.Action == ActionFailed {
			out = append(out, e)
		}
	}
	return out
}

// Get returns the change of the object ref, if any.
func (cs ChangeSet) Get(ref object.Ref) (Change, bool) {
	for _, e := range cs.Entries {
		if e.Ref == ref {
			return e, true
		}
	}
	return Change{}, false
}

// PruneSkip says why prune did not run.
type PruneSkip string

// Reasons for not pruning.
const (
	// PruneSkipApplyFailed: some object failed to apply; prune needs a complete apply.
	PruneSkipApplyFailed PruneSkip = "apply-failed"
	// PruneSkipDisabled: the app disabled prune (Options.DisablePrune).
	PruneSkipDisabled PruneSkip = "disabled"
)

// Result is the outcome of syncing one app.
type Result struct {
	// App is the app's name.
	App string `json:"app"`
	// Changes holds one entry per desired or pruned object.
	Changes ChangeSet `json:"changes"`
	// Pruned reports that prune ran.
	Pruned bool `json:"pruned"`
	// PruneSkipped says why prune did not run, when it did not.
	PruneSkipped PruneSkip `json:"pruneSkipped,omitempty"`
	// Inventory is the number of objects in the app's inventory after the sync.
	Inventory int `json:"inventory"`
	// InventoryWrites counts the inventory writes (0 when nothing changed).
	InventoryWrites int `json:"inventoryWrites"`
	// Duration is the sync's wall time (nanoseconds in JSON).
	Duration time.Duration `json:"duration"`
}

// Op names the request that failed for an object.
type Op string

// Failed operations.
const (
	// OpGet: reading the live object.
	OpGet Op = "get"
	// OpDryRun: the server-side dry-run apply.
	OpDryRun Op = "dry-run"
	// OpApply: the server-side apply.
	OpApply Op = "apply"
	// OpWait: waiting for a CRD to be established or a deleted object to be gone.
	OpWait Op = "wait"
	// OpDelete: deleting the object (prune, or the first half of a recreate).
	OpDelete Op = "delete"
	// OpAdopt: taking over an existing object (refused: see OwnershipError).
	OpAdopt Op = "adopt"
)

// OwnershipError is an existing object the app may not take over: another app owns it
// (its outpost.dev/app label), or Outpost does not manage it and the app did not opt in
// to adopt it. The object is neither applied nor, later, pruned by this app.
type OwnershipError struct {
	// Object is the object.
	Object object.Ref
	// App is the app that wanted it.
	App string
	// Owner is the app that owns it; empty when Outpost does not manage it.
	Owner string
}

func (e *OwnershipError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("%s belongs to app %q, not %q: two apps may not manage one object", e.Object, e.Owner, e.App)
	}
	return fmt.Sprintf("%s exists and is not managed by Outpost: set adopt: true in apps/%s/app.yaml, or annotate the object %s: \"true\", to let app %q take it over",
		e.Object, e.App, AdoptAnnotation, e.App)
}

// ObjectError is the failure of one object; the other objects of the sync went on.
type ObjectError struct {
	// Object is the object that failed.
	Object object.Ref
	// Op is the request that failed.
	Op Op
	// Reason is the apiserver's reason (Invalid, Conflict, NotFound, Forbidden, …);
	// empty when the error did not come from the apiserver.
	Reason metav1.StatusReason
	// Immutable reports a change to an immutable field; Options.Force recreates.
	Immutable bool
	// Err is the underlying error.
	Err error
}

func newObjectError(ref object.Ref, op Op, err error) *ObjectError {
	return &ObjectError{Object: ref, Op: op, Reason: apierrors.ReasonForError(err),
		Immutable: plan.IsImmutable(err), Err: err}
}

// Error implements error.
func (e *ObjectError) Error() string {
	hint := ""
	if e.Immutable {
		hint = " (immutable field; the app can opt in to recreate with force)"
	}
	return fmt.Sprintf("%s %s failed%s: %v", e.Object, e.Op, hint, e.Err)
}

// Unwrap returns the underlying error.
func (e *ObjectError) Unwrap() error { return e.Err }

// failed returns a failed change for err.
func failed(ref object.Ref, version string, op Op, err error) Change {
	oe := newObjectError(ref, op, err)
	return Change{Ref: ref, Version: version, Action: ActionFailed, Error: oe.Error(),
		Immutable: oe.Immutable, Err: oe}
}

// Refusal says why prune was refused.
type Refusal string

// Prune refusals.
const (
	// RefusedIncomplete: the apply did not succeed for every desired object.
	RefusedIncomplete Refusal = "apply-incomplete"
	// RefusedEmpty: prune would leave the app with no object and the app does not
	// allow it (Options.AllowEmpty).
	RefusedEmpty Refusal = "empty"
)

// PruneRefusedError reports that prune was refused: nothing was deleted.
type PruneRefusedError struct {
	// App is the app's name.
	App string
	// Reason says why.
	Reason Refusal
	// Objects is the number of objects prune would have deleted.
	Objects int
}

// Error implements error.
func (e *PruneRefusedError) Error() string {
	switch e.Reason {
	case RefusedEmpty:
		return fmt.Sprintf("app %q: refusing to prune all %d objects: the desired set is empty and the app does not allow empty",
			e.App, e.Objects)
	default:
		return fmt.Sprintf("app %q: refusing to prune %d objects: the apply did not succeed for every object",
			e.App, e.Objects)
	}
}
