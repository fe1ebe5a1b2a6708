// Package health tells whether an app's objects are ready, using kstatus (the fork
// github.com/fluxcd/cli-utils/pkg/kstatus/status that fluxcd/pkg/ssa uses, so the
// apply path has one notion of status).
//
// # Model
//
// Each object gets a kstatus status computed from its live state (Of): Current,
// InProgress, Failed or Terminating; a missing object is NotFound and one that cannot be
// read or judged is Unknown. Objects without meaningful status (ConfigMap, Secret,
// Service of type ClusterIP...) are Current.
//
// Aggregate, a pure function, folds the objects of one app into an AppHealth: the
// app is as healthy as its least healthy object, which is reported as Failing with its
// message. Severity, worst first: Failed, NotFound, Unknown, Terminating, InProgress,
// Current. An app with no objects is Current.
//
// Check reads every object once through a Getter and aggregates; Wait polls until all
// objects are Current, any is Failed, or the app's health timeout passes, in which case
// the app is Timeout and Failing names the object it was still waiting for.
package health
