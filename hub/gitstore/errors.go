package gitstore

import (
	"errors"
	"fmt"
)

// ErrStaleRevision is returned by a write whose ifMatch revision is older than
// a change to a file the write touches: the caller decided on a view of that
// file that is no longer current. The hub answers it with HTTP 409; the caller
// re-reads and decides again. The returned error wraps it and names the file.
var ErrStaleRevision = errors.New("stale revision")

// ErrPushConflict is returned by a write when the remote kept moving: every one
// of Config.MaxAttempts pushes lost a race against a commit made directly in the
// remote. Nothing was committed; retrying later may succeed.
var ErrPushConflict = errors.New("remote kept changing while pushing")

// Kind is what a NotFoundError looked for or an ExistsError found. The hub's
// API chooses the response of a *NotFoundError by its Kind, so every Kind is
// one of the constants below (see Kinds).
type Kind string

// The kinds of things the store looks up.
const (
	// KindCluster is a cluster: its directory clusters/<name>/.
	KindCluster Kind = "cluster"
	// KindApp is an app: its directory apps/<name>/, or its entry in a
	// cluster's apps.yaml.
	KindApp Kind = "app"
	// KindRevision is a commit.
	KindRevision Kind = "revision"
	// KindPreviousVersion is the version an app had on a cluster before its
	// current one (what a rollback goes back to).
	KindPreviousVersion Kind = "previous version"
	// KindRolloutPolicy is an app's rollout policy: rollouts/<app>.yaml.
	KindRolloutPolicy Kind = "rollout policy"
)

// Kinds returns every Kind, so that a table keyed by Kind can be checked for
// completeness.
func Kinds() []Kind {
	return []Kind{KindCluster, KindApp, KindRevision, KindPreviousVersion, KindRolloutPolicy}
}

// NotFoundError says that a cluster, an app, a revision or a previous version
// does not exist.
type NotFoundError struct {
	// Kind is what was looked for.
	Kind Kind `json:"kind"`
	// Name is the name or revision looked for.
	Name string `json:"name"`
	// Cluster is set when the app (or its previous version) was looked for on one
	// cluster, i.e. in clusters/<Cluster>/apps.yaml.
	Cluster string `json:"cluster,omitempty"`
	// Detail says where it was looked for, e.g. "no directory apps/web/".
	Detail string `json:"detail,omitempty"`
}

// Error formats as `app "web" not found on cluster "prod": detail`.
func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s %q not found", e.Kind, e.Name)
	if e.Cluster != "" {
		msg += fmt.Sprintf(" on cluster %q", e.Cluster)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Input names what a ValidationError rejects: an argument of a Store method, or
// a Config field. The hub's API chooses the response of a *ValidationError by
// its Input, so every Input is one of the constants below (see Inputs).
type Input string

// The arguments of the Store's methods.
const (
	// InputCluster is a cluster name.
	InputCluster Input = "cluster"
	// InputApp is an app name.
	InputApp Input = "app"
	// InputVersion is an app version.
	InputVersion Input = "version"
	// InputLabels are a cluster's labels.
	InputLabels Input = "labels"
	// InputLimit is the number of history entries asked for.
	InputLimit Input = "limit"
	// InputRevision is a commit id to read at (or both of Changed's).
	InputRevision Input = "revision"
	// InputOldRev is Changed's older revision.
	InputOldRev Input = "oldRev"
	// InputNewRev is Changed's newer revision.
	InputNewRev Input = "newRev"
	// InputIfMatch is a write's ifMatch revision.
	InputIfMatch Input = "ifMatch"
	// InputAuthorName is the name of a write's author.
	InputAuthorName Input = "author.name"
	// InputAuthorEmail is the email of a write's author.
	InputAuthorEmail Input = "author.email"
	// InputAction is a bulk write's action.
	InputAction Input = "action"
	// InputSelector is a bulk write's label selector (also when it matches no
	// cluster).
	InputSelector Input = "selector"
	// InputClusters is a bulk write's list of clusters.
	InputClusters Input = "clusters"
	// InputVarsFrom is the cluster a bulk write copies vars from.
	InputVarsFrom Input = "varsFrom"
)

// The Config fields Open checks.
const (
	// InputDir is Config.Dir.
	InputDir Input = "dir"
	// InputURL is Config.URL.
	InputURL Input = "url"
	// InputBranch is Config.Branch.
	InputBranch Input = "branch"
	// InputSeed is Config.Seed.
	InputSeed Input = "seed"
	// InputCommitterName is Config.Committer.Name.
	InputCommitterName Input = "committer.name"
	// InputCommitterEmail is Config.Committer.Email.
	InputCommitterEmail Input = "committer.email"
)

// Inputs returns every Input, so that a table keyed by Input can be checked for
// completeness.
func Inputs() []Input {
	return []Input{InputCluster, InputApp, InputVersion, InputLabels, InputLimit, InputRevision,
		InputOldRev, InputNewRev, InputIfMatch, InputAuthorName, InputAuthorEmail,
		InputAction, InputSelector, InputClusters, InputVarsFrom, InputDir, InputURL, InputBranch, InputSeed, InputCommitterName, InputCommitterEmail}
}

// ValidationError is a rejected input: a malformed name, version, author,
// revision, limit or labels of a Store method, or a Config field Open refuses.
// A repository whose content prevents a change is a *ContentError instead.
type ValidationError struct {
	// Field is the rejected input.
	Field Input `json:"field"`
	// Msg says what is wrong.
	Msg string `json:"message"`
	// Err is the underlying error, if any (a *repo.InvalidError for a name or
	// version).
	Err error `json:"-"`
}

// Error formats as "field: msg".
func (e *ValidationError) Error() string { return string(e.Field) + ": " + e.Msg }

// Unwrap returns the underlying error.
func (e *ValidationError) Unwrap() error { return e.Err }

// ContentError says that the repository's content prevents a change: the edit
// would leave a file (or a cluster directory) that sync/repo rejects, or File
// is not in a shape the store can edit. The input was well-formed; the same
// change may succeed once the repository is fixed.
type ContentError struct {
	// File is the repo-relative file or directory, e.g. "clusters/prod/apps.yaml".
	File string `json:"file"`
	// Msg says what is wrong.
	Msg string `json:"message"`
	// Err is the underlying error, if any (a *repo.Error for a file sync/repo
	// rejects).
	Err error `json:"-"`
}

// Error formats as "file: msg".
func (e *ContentError) Error() string { return e.File + ": " + e.Msg }

// Unwrap returns the underlying error.
func (e *ContentError) Unwrap() error { return e.Err }

// ExistsError is returned by AddCluster for a cluster whose directory already
// exists.
type ExistsError struct {
	// Kind is what exists: KindCluster.
	Kind Kind `json:"kind"`
	// Name is its name.
	Name string `json:"name"`
}

// Error formats as `cluster "prod" already exists`.
func (e *ExistsError) Error() string { return fmt.Sprintf("%s %q already exists", e.Kind, e.Name) }
