package engine

import (
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Phase is where an app's sync ended.
type Phase string

// Phases.
const (
	// PhaseSynced: rendered, applied completely, pruned (unless disabled).
	PhaseSynced Phase = "Synced"
	// PhaseFailed: a stage failed; Error says which and where. Nothing was pruned.
	PhaseFailed Phase = "Failed"
	// PhaseBlocked: a dependency is not synced and healthy; the app was not touched.
	PhaseBlocked Phase = "Blocked"
	// PhaseRemoved: the app left apps.yaml and its objects were pruned.
	PhaseRemoved Phase = "Removed"
)

// Stage names a step of an app's sync.
type Stage string

// Stages.
const (
	// StageFetch is reading the repository (used by callers; the engine reads a
	// directory and never fails here).
	StageFetch  Stage = "fetch"
	StageRender Stage = "render"
	StageApply  Stage = "apply"
	StagePrune  Stage = "prune"
	StageHealth Stage = "health"
	// StageHooks is running a Helm chart's pre or post hooks.
	StageHooks Stage = "hooks"
)

// ClusterResult is the outcome of SyncCluster.
type ClusterResult struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Revision is the repository revision synced.
	Revision string `json:"revision"`
	// Spec is the cluster's desired state as loaded.
	Spec *repo.ClusterSpec `json:"-"`
	// Apps are the apps of apps.yaml, in its order.
	Apps []AppResult `json:"apps"`
	// Removed are the apps pruned because they left apps.yaml.
	Removed []AppResult `json:"removed,omitempty"`
	// Duration is the whole sync.
	Duration time.Duration `json:"duration"`
}

// AppResult is the outcome of one app's sync.
type AppResult struct {
	// App is the app's name.
	App string `json:"app"`
	// Version is its version from apps.yaml.
	Version string `json:"version,omitempty"`
	// Revision is the repository revision.
	Revision string `json:"revision"`
	// Config is the app's app.yaml settings.
	Config repo.AppConfig `json:"config"`
	// Phase is where the sync ended.
	Phase Phase `json:"phase"`
	// Message explains PhaseBlocked.
	Message string `json:"message,omitempty"`
	// Error is the failure, for PhaseFailed.
	Error *Error `json:"error,omitempty"`
	// Digest identifies the rendered output.
	Digest string `json:"digest,omitempty"`
	// Objects are the rendered objects (the desired state).
	Objects []*unstructured.Unstructured `json:"-"`
	// Apply is the apply and prune result; nil when the app was not applied.
	Apply *apply.Result `json:"apply,omitempty"`
	// Health is the app's health after the apply.
	Health health.AppHealth `json:"health"`
	// Durations are the stages' wall times.
	Durations Durations `json:"durations"`
	// SyncedAt is when the sync succeeded.
	SyncedAt time.Time `json:"syncedAt,omitzero"`
}

// Durations are the wall times of an app's stages.
type Durations struct {
	Render time.Duration `json:"render"`
	Apply  time.Duration `json:"apply"`
	Health time.Duration `json:"health"`
	// Hooks is the time spent running Helm chart hooks.
	Hooks time.Duration `json:"hooks,omitempty"`
}

// Error is a failed stage and where it failed.
type Error struct {
	// Stage is the failed stage.
	Stage Stage `json:"stage"`
	// Message is the failure.
	Message string `json:"message"`
	// File, Line and Field locate a repository problem.
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	// Object names the object at fault ("Kind/namespace/name").
	Object string `json:"object,omitempty"`
	// Err is the cause.
	Err error `json:"-"`
}

func (e *Error) Error() string { return string(e.Stage) + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

func newAppResult(req Request, app *repo.App) *AppResult {
	return &AppResult{App: app.Name, Version: app.Version, Revision: req.Revision, Config: app.Config, Health: health.AppHealth{Status: health.Unknown}}
}

// fail records err as the failure of stage.
func (ar *AppResult) fail(stage Stage, err error) *AppResult {
	ar.Phase = PhaseFailed
	ar.Error = Locate(stage, err)
	return ar
}

// Locate makes err the failure of stage, with the file, line, field and object that
// the typed errors of the stages (repo, render, apply, namespace) carry. The engine
// uses it for every failed app; the agent for the fetch and load failures it reports
// on every app.
func Locate(stage Stage, err error) *Error {
	e := &Error{Stage: stage, Message: err.Error(), Err: err}
	var re *repo.Error
	if errors.As(err, &re) {
		e.File, e.Line, e.Field = re.File, re.Line, re.Field
	}
	var rend *render.Error
	if errors.As(err, &rend) {
		e.Object = rend.Object
	}
	var oe *apply.ObjectError
	if errors.As(err, &oe) {
		e.Object = oe.Object.String()
	}
	var ne *NamespaceError
	if errors.As(err, &ne) {
		e.Object = ne.Object.String()
	}
	return e
}
