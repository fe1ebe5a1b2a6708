package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/labels"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// Exporter writes the repository's tree at a revision into a directory; the API's
// diff route needs it (*gitstore.Store is one). A Git without it answers 501.
type Exporter interface {
	// Export writes rev's tree (the head when empty) into the empty directory dir
	// and returns the commit id and its first parent.
	Export(ctx context.Context, rev, dir string) (commit, parent string, err error)
}

// maxDiffs bounds the diffs rendered at once: each renders every app of the fleet
// twice at worst, seconds of CPU.
const maxDiffs = 2

// diff answers GET /api/v1/diff?base=&head=&cluster=&selector=: what head changes
// relative to base (default: head's first parent) on every cluster, rendered by the
// agent's renderer (sync/fleetdiff), as outpost diff -o json prints it.
func (a *API) diff(w http.ResponseWriter, r *http.Request, _ *caller) error {
	head, err := singleQuery(r, "head")
	if err != nil {
		return err
	}
	base, err := singleQuery(r, "base")
	if err != nil {
		return err
	}
	cluster, err := queryName(r, "cluster")
	if err != nil {
		return err
	}
	selText, err := singleQuery(r, "selector")
	if err != nil {
		return err
	}
	opts := fleetdiff.Options{}
	if cluster != "" {
		opts.Clusters = []string{cluster}
	}
	if selText != "" {
		if cluster != "" {
			return errInvalid("selector", "give cluster or selector, not both")
		}
		if opts.Selector, err = labels.Parse(selText); err != nil {
			return errInvalid("selector", "%s", err)
		}
	}
	res, err := a.diffRevisions(r.Context(), base, head, opts)
	if err != nil {
		return err
	}
	setETag(w, res.Head+"-"+res.Base)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// Diff renders what head (empty: the head) changes relative to base (empty: head's
// first parent) on every cluster: the answer of GET /api/v1/diff, for the dashboard.
func (a *API) Diff(ctx context.Context, base, head string) (*fleetdiff.Result, error) {
	return a.diffRevisions(ctx, base, head, fleetdiff.Options{})
}

// diffRevisions exports both revisions and runs fleetdiff, at most maxDiffs at once.
func (a *API) diffRevisions(ctx context.Context, base, head string, opts fleetdiff.Options) (*fleetdiff.Result, error) {
	ex, ok := a.cfg.Git.(Exporter)
	if !ok {
		return nil, newError(apiv1.CodeUnavailable, "", "this hub's Git store cannot export revisions")
	}
	select {
	case a.diffs <- struct{}{}:
		defer func() { <-a.diffs }()
	default:
		e := newError(apiv1.CodeTooManyRequests, "", "%d diffs are being rendered; retry shortly", maxDiffs)
		e.retryAfter = "2"
		return nil, e
	}
	tmp, err := os.MkdirTemp("", "outpost-hub-diff-")
	if err != nil {
		return nil, fmt.Errorf("diff work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	headDir, baseDir := filepath.Join(tmp, "head"), filepath.Join(tmp, "base")
	for _, d := range []string{headDir, baseDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("diff work directory: %w", err)
		}
	}
	headRev, parent, err := ex.Export(ctx, head, headDir)
	if err != nil {
		return nil, fieldError("head", err)
	}
	if base == "" {
		base = parent
	}
	opts.HeadName, opts.BaseName = headRev, "(none)"
	if base == "" {
		baseDir = "" // a root commit: everything is added
	} else {
		baseRev, _, err := ex.Export(ctx, base, baseDir)
		if err != nil {
			return nil, fieldError("base", err)
		}
		opts.BaseName = baseRev
	}
	return fleetdiff.Compute(ctx, baseDir, headDir, opts)
}

// fieldError names the query parameter a revision error is about.
func fieldError(field string, err error) error {
	resp, _, internal := toResponse(err)
	if internal {
		return err
	}
	resp.Field = field
	return &apiError{resp: resp}
}
