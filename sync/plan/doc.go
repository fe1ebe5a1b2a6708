// Package plan decides what a sync does to each object of an app, and shows exactly
// which fields an apply would change.
//
// # Pairing (pure)
//
// Build pairs the desired objects with the app's inventory (package
// sync/inventory) and the live resourceVersions into a Plan: per object, create,
// update, unchanged or delete, with the reason. An object whose desired hash
// (Hash) and live resourceVersion both equal the record of its last apply is
// unchanged without any request to the apiserver: that is how a sync with nothing
// new costs no write and no dry-run. Objects in the inventory that are no longer
// desired are deletes. Build does no I/O and is table-tested.
//
// # Dry-run (I/O)
//
// Create and update are provisional: Differ.Refine settles them with a server-side
// apply dry-run per object under the field manager "outpost", and fills a
// field-level diff (Compare: path, old → new). Both sides of the diff come from the
// apiserver, so defaulted fields never show as changes. Values of Secrets are
// masked in every diff: Mask prints "***" and a keyed hash, so a change is visible
// but not the value.
//
// Results are data with JSON tags: a Plan can be reported as it is.
package plan
