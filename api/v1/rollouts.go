package v1

import "time"

// RolloutsPath is the collection of rollout runs.
const RolloutsPath = "/api/v1/rollouts"

// MaxRolloutIDLen is the longest rollout ID.
const MaxRolloutIDLen = 100

// IsRolloutID reports whether id has the form of a rollout ID: 1 to MaxRolloutIDLen
// lower-case letters, digits and '-', starting and ending with a letter or digit
// (the app's name, a dash, then the start time and a random suffix).
func IsRolloutID(id string) bool {
	if id == "" || len(id) > MaxRolloutIDLen || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// RolloutState is where a rollout run stands.
type RolloutState string

// Rollout states. Running, AwaitingApproval, Paused and RollingBack are active: the
// run holds its clusters (a manual set on them for the app answers 409).
const (
	// RolloutRunning: the run writes and watches its waves.
	RolloutRunning RolloutState = "Running"
	// RolloutAwaitingApproval: the next wave waits for `outpost rollout approve`.
	RolloutAwaitingApproval RolloutState = "AwaitingApproval"
	// RolloutPaused: a person (or onFailure: pause, or a forced manual set) holds the
	// run; nothing is written until it resumes.
	RolloutPaused RolloutState = "Paused"
	// RolloutRollingBack: the rollback commit is written (or being written) and the
	// run waits for the clusters to report their old version healthy.
	RolloutRollingBack RolloutState = "RollingBack"
	// RolloutSucceeded: every wave is done.
	RolloutSucceeded RolloutState = "Succeeded"
	// RolloutRolledBack: every touched cluster was set back (see the clusters'
	// phases for any that could not be).
	RolloutRolledBack RolloutState = "RolledBack"
	// RolloutAborted: stopped by a person; the clusters stay as they are.
	RolloutAborted RolloutState = "Aborted"
)

// Active reports whether the run still holds its clusters.
func (s RolloutState) Active() bool {
	switch s {
	case RolloutRunning, RolloutAwaitingApproval, RolloutPaused, RolloutRollingBack:
		return true
	}
	return false
}

// ClusterPhase is where one cluster of a rollout stands.
type ClusterPhase string

// Cluster phases of a rollout.
const (
	// ClusterPending: not written yet.
	ClusterPending ClusterPhase = "Pending"
	// ClusterWriting: the commit that changes it is being written.
	ClusterWriting ClusterPhase = "Writing"
	// ClusterProgressing: written; waiting for a report of the new version, at the
	// commit or later, Synced and Current.
	ClusterProgressing ClusterPhase = "Progressing"
	// ClusterSoaking: Synced and Current since FirstHealthyAt; done after the soak.
	ClusterSoaking ClusterPhase = "Soaking"
	// ClusterVerified: stayed Synced and Current for the whole soak.
	ClusterVerified ClusterPhase = "Verified"
	// ClusterFailed: the sync failed, health failed, or the progress deadline passed.
	ClusterFailed ClusterPhase = "Failed"
	// ClusterSkipped: someone changed the app on this cluster before the run wrote
	// it; the run left it alone.
	ClusterSkipped ClusterPhase = "Skipped"
	// ClusterOverridden: a forced manual write changed it during the run.
	ClusterOverridden ClusterPhase = "Overridden"
	// ClusterRollingBack: the rollback commit set it back; waiting for its report.
	ClusterRollingBack ClusterPhase = "RollingBack"
	// ClusterRolledBack: it reports its old version again, Synced and Current.
	ClusterRolledBack ClusterPhase = "RolledBack"
	// ClusterConflict: the rollback found another version than the run's there
	// (someone changed it), and left it alone.
	ClusterConflict ClusterPhase = "Conflict"
)

// Rollout is one run of a rollout policy: one app moved to one version across the
// clusters of the policy's waves, wave by wave, through commits.
type Rollout struct {
	// ID names the run (in commits' Outpost-Rollout trailer, in 409 answers).
	ID string `json:"id"`
	// App is the app.
	App string `json:"app"`
	// Version is the version the run moves the app to.
	Version string `json:"version"`
	// State is where the run stands.
	State RolloutState `json:"state"`
	// Reason says why the run is in its state (paused, failed, waiting for a window).
	Reason string `json:"reason,omitempty"`
	// Wave is the index of the current wave (len(Waves) when every wave is done).
	Wave int `json:"wave"`
	// Revision is the head the run started at; its policy was read there.
	Revision string `json:"revision"`
	// Policy is the policy as read at Revision (the run keeps it if the file changes).
	Policy RolloutPolicy `json:"policy"`
	// Waves are the waves with their clusters, resolved at Revision.
	Waves []RolloutWave `json:"waves"`
	// Clusters are the clusters of every wave, in wave order then by name.
	Clusters []RolloutCluster `json:"clusters"`
	// Steps are the commits the run made or is making, oldest first.
	Steps []RolloutStep `json:"steps"`
	// CreatedBy is who started the run.
	CreatedBy string `json:"createdBy"`
	// CreatedAt is when the run started.
	CreatedAt time.Time `json:"createdAt"`
	// UpdatedAt is when the run last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// FinishedAt is when the run reached a final state; zero while active.
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Generation counts the run's changes (compare-and-swap in the store).
	Generation int64 `json:"generation"`
}

// RolloutPolicy is the wire form of rollouts/<app>.yaml (see docs/repo-layout.md).
type RolloutPolicy struct {
	// ProgressDeadlineSeconds bounds, per cluster, the time from its commit to a
	// Synced and Current report of the new version.
	ProgressDeadlineSeconds int64 `json:"progressDeadlineSeconds"`
	// OnFailure is rollback or pause.
	OnFailure string `json:"onFailure"`
	// Window, when set, describes when waves may start ("Mon,Tue 08:00-16:00 Europe/Paris").
	Window string `json:"window,omitempty"`
}

// RolloutWave is one wave of a run.
type RolloutWave struct {
	// Name is the wave's name in the policy.
	Name string `json:"name"`
	// Clusters are its clusters, sorted.
	Clusters []string `json:"clusters"`
	// MaxParallel is the most clusters changed at once; 0: all in one commit.
	MaxParallel int `json:"maxParallel,omitempty"`
	// SoakSeconds is how long each cluster must stay Synced and Current.
	SoakSeconds int64 `json:"soakSeconds"`
	// MaxFailures is how many of its clusters may fail.
	MaxFailures int `json:"maxFailures"`
	// Approval is "manual" when the wave waits for an approval.
	Approval string `json:"approval,omitempty"`
	// ApprovedBy is who approved it.
	ApprovedBy string `json:"approvedBy,omitempty"`
	// StartedAt is when its first commit was made.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// DoneAt is when its last cluster finished its soak.
	DoneAt time.Time `json:"doneAt,omitzero"`
}

// RolloutCluster is one cluster of a run.
type RolloutCluster struct {
	// Cluster is the cluster.
	Cluster string `json:"cluster"`
	// Wave is the index of its wave.
	Wave int `json:"wave"`
	// Phase is where it stands.
	Phase ClusterPhase `json:"phase"`
	// Previous is the version it had before the run wrote it ("" when the app was
	// not listed); the rollback sets it back to this.
	Previous string `json:"previous,omitempty"`
	// Step is the index in Steps of the commit that changed it; -1 before.
	Step int `json:"step"`
	// WrittenAt is when that commit was made.
	WrittenAt time.Time `json:"writtenAt,omitzero"`
	// FirstHealthyAt is since when it reports Synced and Current at the new version
	// without a break; zero when it does not.
	FirstHealthyAt time.Time `json:"firstHealthyAt,omitzero"`
	// DoneAt is when it reached Verified, Failed or RolledBack.
	DoneAt time.Time `json:"doneAt,omitzero"`
	// Message explains a failure, a skip or a conflict.
	Message string `json:"message,omitempty"`
	// Reported is the last status of the app on it that the run looked at.
	Reported *RolloutReport `json:"reported,omitempty"`
}

// RolloutReport is the part of a cluster's app status a run's gates read.
type RolloutReport struct {
	// Version is the reported version.
	Version string `json:"version"`
	// Revision is the reported revision.
	Revision string `json:"revision"`
	// Phase is the reported phase.
	Phase Phase `json:"phase"`
	// Health is the reported health.
	Health HealthStatus `json:"health"`
	// ReceivedAt is when the hub received it.
	ReceivedAt time.Time `json:"receivedAt"`
}

// StepKind is what a step's commit does.
type StepKind string

// Step kinds.
const (
	// StepForward sets the run's version on the step's clusters.
	StepForward StepKind = "forward"
	// StepRollback sets each touched cluster back to its previous version.
	StepRollback StepKind = "rollback"
)

// RolloutStep is one commit of a run.
type RolloutStep struct {
	// Kind is forward or rollback.
	Kind StepKind `json:"kind"`
	// Wave is the index of the wave it writes (forward steps).
	Wave int `json:"wave"`
	// Clusters are the clusters it writes.
	Clusters []string `json:"clusters"`
	// Commit is the commit made; empty while the step is being written.
	Commit string `json:"commit,omitempty"`
	// At is when it was planned, then when its commit was recorded.
	At time.Time `json:"at"`
}

// RolloutList is the answer of GET /api/v1/rollouts.
type RolloutList struct {
	// Rollouts are the runs, newest first.
	Rollouts []Rollout `json:"rollouts"`
}

// StartRolloutRequest is the body of POST /api/v1/rollouts.
type StartRolloutRequest struct {
	// App is the app to roll out; rollouts/<app>.yaml must exist.
	App string `json:"app"`
	// Version is the version to roll out.
	Version string `json:"version"`
}

// Validate checks the request.
func (r *StartRolloutRequest) Validate() error {
	if err := ValidateName("app", r.App); err != nil {
		return err
	}
	return ValidateVersion("version", r.Version)
}

// RolloutAction is a person's action on a run: POST /api/v1/rollouts/{id}/{action}.
type RolloutAction string

// Rollout actions.
const (
	// ActionPause holds an active run.
	ActionPause RolloutAction = "pause"
	// ActionResume continues a paused run.
	ActionResume RolloutAction = "resume"
	// ActionApprove lets a wave that waits for approval start.
	ActionApprove RolloutAction = "approve"
	// ActionAbort stops the run and leaves the clusters as they are.
	ActionAbort RolloutAction = "abort"
	// ActionRollback sets every touched cluster back to its previous version.
	ActionRollback RolloutAction = "rollback"
)

// Valid reports whether a is one of the actions.
func (a RolloutAction) Valid() bool {
	switch a {
	case ActionPause, ActionResume, ActionApprove, ActionAbort, ActionRollback:
		return true
	}
	return false
}

// Rollout event type: a run started, a wave started or finished, a cluster failed,
// the run paused, aborted, rolled back or succeeded.
const EventRollout EventType = "rollout"
