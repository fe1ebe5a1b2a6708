// Package drift tells which fields of an object Outpost applied were changed behind its
// back, by which field manager, and when.
//
// # Model
//
// Drift means a field Outpost owns changed (design brief, principle 6). Server-side
// apply records in metadata.managedFields who owns each field. Outpost applies as field
// manager "outpost" (operation Apply), so a field of the desired object is drifted when
// either
//
//   - it is no longer in Outpost's Apply entry: another manager took it, e.g.
//     `kubectl scale` moves f:spec.f:replicas to manager "kubectl" (operation Update,
//     subresource "scale"), `kubectl edit` moves an image to "kubectl-edit"; or nobody
//     owns it any more because it was removed; or
//   - Outpost still owns it but the live value differs from the desired one (the
//     desired object is newer than what was applied, or something mutated it).
//
// A field Outpost never set — replicas left to an HPA, a caBundle injected by a
// webhook, a defaulted value, a label added by someone else — is never visited, so it is
// never drift. An object deleted out of band is drift too (Report.Deleted).
//
// # How
//
// Detect walks the desired object once, descending in step into the live object and
// into every managedFields entry's fieldsV1 tree (already decoded maps in an
// unstructured object). The fieldsV1 trees also tell how each list is merged: entries
// keyed "k:{...}" are associative lists (their key fields are read from the entry, and a
// key field the server defaulted, like a port's protocol, is matched too), "v:..." are
// sets, and a list with no children is atomic and compared as a whole. No schema, no
// conversion to typed objects and no deep copy are needed, so Detect is cheap enough to
// run on every watch event. Values are only copied for the fields that drifted.
//
// Detect is pure: the caller passes the time it observed the live object, used as the
// time of a change when the owning managedFields entry carries none (the scale
// subresource writes entries without time). Values of v1 Secret data and stringData are
// never put in a report.
package drift
