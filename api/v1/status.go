package v1

import "time"

// Paths of the agent endpoints.
const (
	// ReportPath receives a StatusReport (POST), authenticated with the cluster's token.
	ReportPath = "/api/v1/agent/report"
	// DesiredPath answers the desired-revision long-poll (GET ?cluster=&since=).
	DesiredPath = "/api/v1/agent/desired"
)

// StatusReport is what an agent sends to the hub (POST /api/v1/agent/report): the
// current state of some or all of its apps and, for each app it carries, that app's
// complete current drift.
type StatusReport struct {
	// Cluster is the reporting cluster; it must be the cluster of the token.
	Cluster string `json:"cluster"`
	// Agent identifies the agent process that sent the report.
	Agent AgentInfo `json:"agent"`
	// SentAt is when the agent sent the report (its clock).
	SentAt time.Time `json:"sentAt"`
	// Apps holds the state of the apps this report carries, each at most once. An app
	// left out keeps its last reported state at the hub. Empty is a heartbeat.
	Apps []AppStatus `json:"apps,omitempty"`
	// Drift is the complete current drift of every app in Apps: for each app of Apps,
	// the entries with that App replace what the hub knew, and no entry clears it. Every
	// entry's App must be in Apps.
	Drift []Drift `json:"drift,omitempty"`
}

// ReportResponse answers an accepted StatusReport (200).
type ReportResponse struct {
	// Stored lists the apps whose status the hub stored.
	Stored []string `json:"stored"`
	// Stale lists the apps the hub ignored because it holds a newer or equal
	// generation of them; the agent need not resend those states.
	Stale []string `json:"stale,omitempty"`
}

// AgentInfo identifies an agent process.
type AgentInfo struct {
	// ID is the agent's identity, stable for the process, e.g. its leader-election
	// identity.
	ID string `json:"id"`
	// Pod is the agent's pod name, when it runs in a pod.
	Pod string `json:"pod,omitempty"`
	// Version is the agent's build version.
	Version string `json:"version,omitempty"`
}

// Phase is where the sync of an app stands.
type Phase string

// Sync phases.
const (
	// PhasePending: the app is desired but no sync of it has started yet (e.g. waiting
	// for the apps it depends on).
	PhasePending Phase = "Pending"
	// PhaseSyncing: a sync of the app is running.
	PhaseSyncing Phase = "Syncing"
	// PhaseSynced: the last sync rendered, applied and pruned the app completely.
	PhaseSynced Phase = "Synced"
	// PhaseFailed: the last sync failed; Error says where.
	PhaseFailed Phase = "Failed"
	// PhaseSourceUnavailable: Git could not be read; the cluster keeps the last synced
	// state and nothing is pruned. Error says why.
	PhaseSourceUnavailable Phase = "SourceUnavailable"
	// PhaseRemoved: the app left the cluster's desired state and the agent pruned it. The
	// hub drops the app's drift and keeps the status as a tombstone, so an older report
	// cannot bring the app back.
	PhaseRemoved Phase = "Removed"
)

// Valid tells whether p is one of the phases above.
func (p Phase) Valid() bool {
	switch p {
	case PhasePending, PhaseSyncing, PhaseSynced, PhaseFailed, PhaseSourceUnavailable, PhaseRemoved:
		return true
	}
	return false
}

// HealthStatus is the health of an app: the worst kstatus of its objects.
type HealthStatus string

// Health statuses. The agent maps kstatus Terminating to InProgress and NotFound to
// Failed.
const (
	// HealthCurrent: every object is ready (or has no notion of readiness).
	HealthCurrent HealthStatus = "Current"
	// HealthInProgress: some object is making its way to Current.
	HealthInProgress HealthStatus = "InProgress"
	// HealthFailed: some object will not become Current without a change.
	HealthFailed HealthStatus = "Failed"
	// HealthTimeout: the app did not become Current within its health timeout.
	HealthTimeout HealthStatus = "Timeout"
	// HealthUnknown: health was not assessed (yet) or could not be read.
	HealthUnknown HealthStatus = "Unknown"
)

// Valid tells whether h is one of the statuses above.
func (h HealthStatus) Valid() bool {
	switch h {
	case HealthCurrent, HealthInProgress, HealthFailed, HealthTimeout, HealthUnknown:
		return true
	}
	return false
}

// Generation orders the reports of one app of one cluster. The hub keeps the report
// with the greatest generation, comparing Epoch first, then Sequence.
//
// The agent sets Epoch to the Unix time in milliseconds at which it became the active
// agent (acquired the leader-election lease, or started when it runs without leader
// election) and keeps it for as long as it stays active; Sequence counts the app's
// status changes within the epoch, from 1. A restarted agent or a new leader thus
// starts a greater epoch (unless clocks are skewed by more than the previous leader's
// whole tenure), and a retried or delayed report of an earlier state is ignored.
type Generation struct {
	// Epoch is when the reporting agent became active, in Unix milliseconds.
	Epoch int64 `json:"epoch"`
	// Sequence counts the app's reported states within Epoch, from 1.
	Sequence int64 `json:"sequence"`
}

// MaxEpochSkew is how far past the hub's clock a report's Generation.Epoch may be. A
// later epoch is refused: it would make every real report after it look stale.
const MaxEpochSkew = 5 * time.Minute

// CheckEpochs refuses a report any of whose apps has an epoch later than now plus
// MaxEpochSkew, naming the field.
func (r *StatusReport) CheckEpochs(now time.Time) error {
	limit := now.Add(MaxEpochSkew).UnixMilli()
	for i := range r.Apps {
		if e := r.Apps[i].Generation.Epoch; e > limit {
			return fieldErr(join(join("apps", i), "generation", "epoch"), "%d is more than %s past the hub's clock (%d): the agent's clock is wrong", e, MaxEpochSkew, now.UnixMilli())
		}
	}
	return nil
}

// Compare returns -1, 0 or +1 as g is older than, the same as, or newer than o.
func (g Generation) Compare(o Generation) int {
	switch {
	case g.Epoch < o.Epoch:
		return -1
	case g.Epoch > o.Epoch:
		return 1
	case g.Sequence < o.Sequence:
		return -1
	case g.Sequence > o.Sequence:
		return 1
	}
	return 0
}

// AppStatus is the state of one app on one cluster, as its agent last saw it.
type AppStatus struct {
	// App is the app's name.
	App string `json:"app"`
	// Generation orders this state among the app's reports.
	Generation Generation `json:"generation"`
	// Version is the app version the status is about (from apps.yaml).
	Version string `json:"version,omitempty"`
	// Revision is the Git commit the status is about (40 or 64 hex digits).
	Revision string `json:"revision,omitempty"`
	// Phase is where the sync stands.
	Phase Phase `json:"phase"`
	// Health is the app's health after the last apply.
	Health Health `json:"health"`
	// Counts counts the objects of the last sync per action.
	Counts Counts `json:"counts"`
	// Changes lists the objects the last sync changed (not the unchanged ones), at most
	// MaxChanges, sorted by object.
	Changes []ObjectChange `json:"changes,omitempty"`
	// ChangesOmitted is the number of changed objects left out of Changes.
	ChangesOmitted int `json:"changesOmitted,omitempty"`
	// Error is the failure of the last sync; the agent sets it when Phase is Failed
	// or SourceUnavailable.
	Error *AppError `json:"error,omitempty"`
	// Durations are the last sync's step durations.
	Durations Durations `json:"durations"`
	// LastSyncedAt is when the app was last synced successfully; zero if never.
	LastSyncedAt time.Time `json:"lastSyncedAt,omitzero"`
}

// Health is the health of an app.
type Health struct {
	// Status is the worst status of the app's objects.
	Status HealthStatus `json:"status"`
	// Message explains a status other than Current.
	Message string `json:"message,omitempty"`
	// Object is the object that decided the status (the first failing one).
	Object *ObjectRef `json:"object,omitempty"`
}

// Counts counts the objects of a sync. Created, Configured, Recreated, Unchanged,
// Skipped, Kept and Failed partition the desired objects; Pruned counts objects that left
// the desired set and were deleted.
type Counts struct {
	// Desired is the number of objects the app rendered to.
	Desired int `json:"desired"`
	// Applied is the number of objects written: Created + Configured + Recreated.
	Applied int `json:"applied"`
	// Created is the number of objects that did not exist and were created.
	Created int `json:"created"`
	// Configured is the number of existing objects the apply changed.
	Configured int `json:"configured"`
	// Recreated is the number of objects deleted and created again (immutable fields).
	Recreated int `json:"recreated,omitempty"`
	// Unchanged is the number of objects a dry-run showed unchanged.
	Unchanged int `json:"unchanged"`
	// Skipped is the number of objects skipped without a request (unchanged since the
	// recorded apply).
	Skipped int `json:"skipped,omitempty"`
	// Kept is the number of objects left as someone changed or deleted them, because
	// the app's drift policy is report (or, existing, because they are create-only).
	Kept int `json:"kept,omitempty"`
	// Pruned is the number of objects deleted because they left the desired set.
	Pruned int `json:"pruned"`
	// Failed is the number of objects whose apply or prune failed.
	Failed int `json:"failed"`
}

// ChangeAction is what a sync did to an object.
type ChangeAction string

// Change actions.
const (
	// ActionCreated: the object was created.
	ActionCreated ChangeAction = "created"
	// ActionConfigured: the object was changed.
	ActionConfigured ChangeAction = "configured"
	// ActionRecreated: the object was deleted and created again.
	ActionRecreated ChangeAction = "recreated"
	// ActionPruned: the object left the desired set and was deleted.
	ActionPruned ChangeAction = "pruned"
	// ActionDisowned: the object left the desired set but no longer carried the app's
	// ownership labels; it was left in place.
	ActionDisowned ChangeAction = "disowned"
	// ActionFailed: applying or pruning the object failed.
	ActionFailed ChangeAction = "failed"
)

// Valid tells whether a is one of the actions above.
func (a ChangeAction) Valid() bool {
	switch a {
	case ActionCreated, ActionConfigured, ActionRecreated, ActionPruned, ActionDisowned, ActionFailed:
		return true
	}
	return false
}

// ObjectChange is one entry of a change-set summary: an action and an object. No
// object content is sent.
type ObjectChange struct {
	// Action is what the sync did.
	Action ChangeAction `json:"action"`
	ObjectRef
}

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	// Group is the API group; empty for the core group.
	Group string `json:"group,omitempty"`
	// Version is the API version, e.g. v1.
	Version string `json:"version,omitempty"`
	// Kind is the object's kind, e.g. Deployment.
	Kind string `json:"kind"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
}

// String formats the reference as Kind[.group]/[namespace/]name.
func (r ObjectRef) String() string {
	s := r.Kind
	if r.Group != "" {
		s += "." + r.Group
	}
	if r.Namespace != "" {
		s += "/" + r.Namespace
	}
	return s + "/" + r.Name
}

// Stage names the step of a sync.
type Stage string

// Sync stages.
const (
	// StageFetch reads the Git source.
	StageFetch Stage = "fetch"
	// StageRender builds the manifests (kustomize and substitution).
	StageRender Stage = "render"
	// StagePlan diffs the desired objects against the live cluster.
	StagePlan Stage = "plan"
	// StageApply applies the objects with server-side apply.
	StageApply Stage = "apply"
	// StagePrune deletes the objects that left the desired set.
	StagePrune Stage = "prune"
	// StageHealth waits for the objects to become healthy.
	StageHealth Stage = "health"
)

// Valid tells whether s is one of the stages above.
func (s Stage) Valid() bool {
	switch s {
	case StageFetch, StageRender, StagePlan, StageApply, StagePrune, StageHealth:
		return true
	}
	return false
}

// AppError is the failure of a sync and where it happened. Secret values are never
// put in it.
type AppError struct {
	// Stage is the step that failed.
	Stage Stage `json:"stage"`
	// Message says what went wrong.
	Message string `json:"message"`
	// File is the repo-relative file at fault, e.g. apps/web/deployment.yaml.
	File string `json:"file,omitempty"`
	// Line is the 1-based line in File, or 0.
	Line int `json:"line,omitempty"`
	// Object is the object at fault.
	Object *ObjectRef `json:"object,omitempty"`
	// Field is the path of the field at fault, e.g. spec.replicas.
	Field string `json:"field,omitempty"`
}

// Durations are the wall times of a sync's steps, in milliseconds.
type Durations struct {
	// FetchMs is the Git fetch (0 when nothing was fetched).
	FetchMs int64 `json:"fetchMs"`
	// RenderMs is the kustomize build and substitution.
	RenderMs int64 `json:"renderMs"`
	// PlanMs is the diff against the live cluster.
	PlanMs int64 `json:"planMs"`
	// ApplyMs is the server-side apply.
	ApplyMs int64 `json:"applyMs"`
	// PruneMs is the prune.
	PruneMs int64 `json:"pruneMs"`
	// HealthMs is the wait for health.
	HealthMs int64 `json:"healthMs"`
	// TotalMs is the whole sync.
	TotalMs int64 `json:"totalMs"`
}
