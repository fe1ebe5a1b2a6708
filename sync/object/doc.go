// Package object is the one identity of a Kubernetes object in Outpost's engine,
// and the one definition of who Outpost is on a cluster.
//
// A Ref names an object by group, kind, namespace and name: independent of the API
// version it is served or applied at, so the same object read at apps/v1 and at
// apps/v1beta2 is one Ref. It is comparable and is the map key every step uses
// (render, plan, apply, inventory, health, drift, the agent's drift watcher).
// Where the version matters (the inventory records the version an object was
// applied with; a drift report names the version it compared), it is carried next
// to the Ref, never inside it. The only other shape of an object reference is the
// wire type api/v1.ObjectRef, mapped at the agent's edge.
//
// An Owner is the field manager Outpost applies with and the labels that mark the
// objects it applied for an app. It is built once (DefaultOwner, or from the
// agent's configuration) and handed to apply, drift detection and the drift
// watcher, so the manager drift keys on is always the one apply used.
package object
