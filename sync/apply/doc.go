// Package apply makes a cluster hold an app's desired objects: server-side apply
// under the field manager "outpost", in stages, then prune of what left the app,
// with an in-cluster inventory (package sync/inventory) that makes both safe.
//
// # One sync
//
// Syncer.SyncApp runs one app's sync: pair desired objects with the inventory and
// the live resourceVersions (package sync/plan), store the inventory as stored ∪
// desired, apply, prune, and store the inventory shrunk and with the new records.
// The result is data: a ChangeSet with one Change per object (created, configured,
// recreated, unchanged, skipped, deleted, disowned or failed, with the changed
// fields) and counts.
//
// # No-op costs nothing
//
// For every applied object the inventory records the hash of what was applied and
// the object's resourceVersion right after the apply. A sync first reads the live
// resourceVersions of recorded objects through a LiveLister (by default one
// metadata-only LIST per kind and namespace, selected by the app's ownership
// labels; the agent can plug in its informer cache). An object whose hash and
// resourceVersion both match is skipped: no dry-run, no write. Only the others are
// read, dry-run and applied when the dry-run changes a field (a missing object is
// created with a single apply). fluxcd/pkg/ssa's ApplyAll dry-runs every object on
// every call; this package uses ssa for its staging rules and its wait for CRDs.
//
// # Stages
//
// CRDs, Namespaces and ClusterRoles go first; the CRDs are then waited for until
// Established (kstatus, through ssa.ResourceManager); class definitions follow; all
// other objects last, so a CRD and its custom resources can live in one app. Within
// a stage at most Config.Concurrency objects are in flight. A failed object does
// not stop the others: it is reported as an *ObjectError (Immutable set when an
// immutable field was changed) and, with Options.Force, an immutable change
// recreates the object instead.
//
// # Prune
//
// Prune takes only an *Applied, which only Apply makes, and refuses
// (*PruneRefusedError) unless that apply was complete; it also refuses to empty an
// app unless Options.AllowEmpty. It deletes only objects still labelled as this
// app's, with UID and resourceVersion preconditions; a failed delete keeps the
// object in the inventory for the next sync.
//
// # Crash safety
//
// The inventory is written as a union before the apply and shrunk only after the
// prune, so an agent killed at any point neither orphans an object nor deletes one
// it should keep. Config.Interrupter stops a sync between steps to test exactly that.
package apply
