package render

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/outpost-gitops/outpost/sync/chart"
)

// Error is a failed render. It names the cluster, the app and, when the problem
// is one object, that object ("Kind/namespace/name"); Msg holds the cause with
// absolute paths made repo-relative, e.g.
//
//	render app "web" for cluster "prod": Deployment/web/web: undefined variable "REPLICAS" (...)
//	render app "web" for cluster "prod": apps/web/kustomization.yaml: resources[0]: "https://..." is not a local relative path: ...
//
// When the cause is a *repo.Error (a file, line and field), errors.As finds it.
type Error struct {
	Cluster string `json:"cluster"`
	App     string `json:"app"`
	// Object is "Kind/namespace/name" or "Kind/name", or empty.
	Object string `json:"object,omitempty"`
	// Msg is the cause, with paths relative to the repository root.
	Msg string `json:"msg"`
	// Err is the cause.
	Err error `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(`render app "` + e.App + `" for cluster "` + e.Cluster + `": `)
	if e.Object != "" {
		b.WriteString(e.Object + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same revision cannot help. A render
// reads a local checkout, so everything but cancellation, deadlines and a failed
// chart download (*chart.FetchError) is taken as a property of the repository's
// content. A chart that fails provenance verification (*chart.VerifyError) is
// permanent too: the same version gets the same archive and signature.
func (e *Error) Permanent() bool {
	var fe *chart.FetchError
	return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded) && !errors.As(e.Err, &fe)
}

// kustomizeNoise matches what kustomize appends when it tried a resource as a
// file and then as a directory: the first error is the one that matters.
var kustomizeNoise = regexp.MustCompile(`accumulation err='(.*)': must build at directory: '[^']*': file is not directory`)

// newError wraps err; its text is made repo-relative and shed of kustomize's
// "tried it as a directory too" noise.
func newError(root, cluster, app, object string, err error) *Error {
	msg := strings.ReplaceAll(err.Error(), "'"+root+"'", "the repository root")
	msg = strings.ReplaceAll(msg, root+"/", "")
	msg = strings.ReplaceAll(msg, root, ".")
	msg = kustomizeNoise.ReplaceAllString(msg, "$1")
	return &Error{Cluster: cluster, App: app, Object: object, Msg: msg, Err: err}
}
