// Package driftwatch watches the objects an agent manages and turns every change of
// their drift state into an Event, within the latency of a watch event.
//
// The model: the agent tells the Watcher, per app, the objects it applied (SetDesired).
// The Watcher runs one dynamic informer per kind in use, label-selected on
// app.kubernetes.io/managed-by=outpost, and on every add, update or delete compares the
// live object with the desired one using sync/drift: only fields Outpost owns can
// drift, and each drifted field names the manager that changed it. An Event is emitted
// only when an object's drift state changes (drifted, changed drift, cleared), so the
// frequent status updates of a workload cost one comparison and no report.
//
// Fields that Outpost itself still owns but whose value differs are an apply in flight
// (the desired object is newer than the live one), not drift, and are left out.
//
// The informers' caches double as the agent's view of the cluster: Get serves health
// checks and resourceVersion look-ups without requests to the apiserver.
package driftwatch
