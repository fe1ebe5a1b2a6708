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

// NotFoundError says that a cluster, an app, a revision or a previous version
// does not exist.
type NotFoundError struct {
	// Kind is what was looked for: "cluster", "app", "revision" or "previous version".
	Kind string `json:"kind"`
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

// ValidationError is a rejected input: a malformed name, version, author or
// revision, or an edit that would leave the repository in a state sync/repo
// refuses. Field names the input ("cluster", "app", "version", "author.name",
// "author.email", "ifMatch") or, for a repository content problem, the
// repo-relative file; Err then holds the *repo.Error.
type ValidationError struct {
	// Field is the rejected input or file.
	Field string `json:"field"`
	// Msg says what is wrong.
	Msg string `json:"message"`
	// Err is the underlying error, if any.
	Err error `json:"-"`
}

// Error formats as "field: msg".
func (e *ValidationError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns the underlying error.
func (e *ValidationError) Unwrap() error { return e.Err }

// ExistsError is returned by AddCluster for a cluster whose directory already
// exists.
type ExistsError struct {
	// Kind is what exists: "cluster".
	Kind string `json:"kind"`
	// Name is its name.
	Name string `json:"name"`
}

// Error formats as `cluster "prod" already exists`.
func (e *ExistsError) Error() string { return fmt.Sprintf("%s %q already exists", e.Kind, e.Name) }
