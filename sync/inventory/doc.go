// Package inventory records, per app, every object Outpost applied, so that prune
// deletes only what Outpost itself created and a no-op sync can skip objects without
// asking the apiserver anything but one LIST per kind.
//
// # Model
//
// An Inventory belongs to one app and holds one Entry per object: its identity
// (Ref: group, kind, namespace, name — the API version is kept apart because the
// same object can be served under several versions), the version it was applied
// with, and a Record of the last successful apply: the hash of exactly what was
// sent and the object's resourceVersion right after that apply. An entry without a
// record is an object Outpost is about to apply or whose apply was never confirmed.
//
// The inventory lives in the cluster it describes, as the ConfigMap
// outpost-system/outpost-inv-<app> (see Store), so it survives agent restarts and
// needs no other storage.
//
// # Crash safety
//
// Callers write the union of the stored and the desired entries before applying, and
// shrink the inventory only after prune: an agent killed at any point leaves an
// inventory that names every object Outpost may have created, so nothing is orphaned,
// and it never lists an object Outpost did not apply, so nothing is wrongly deleted.
// The pure functions here (Union, Stale, Equal) compute those sets; package
// sync/apply sequences them.
//
// # Ownership
//
// Objects Outpost applies carry the labels of an object.Owner (managed-by and
// outpost.dev/app=<app>). Owner.Owns reports whether a live object still carries them
// for a given app; prune (package sync/apply) deletes nothing that fails that test.
package inventory
