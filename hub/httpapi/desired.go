package httpapi

import (
	"context"
	"net/http"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
)

// appWrite is what set, unset and rollback share: the path's cluster and app, the
// If-Match revision, and the commit.
type appWrite func(ctx context.Context, cluster, app string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error)

// changeApp runs one write on the app of the request's path and answers its
// ChangeResult; op names it in metrics.
func (a *API) changeApp(w http.ResponseWriter, r *http.Request, c *caller, op string, write appWrite) error {
	cluster, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	app, err := pathName(r, "app")
	if err != nil {
		return err
	}
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	force, err := queryBool(r, "force")
	if err != nil {
		return err
	}
	held, err := a.rolloutGuard(r.Context(), app, []string{cluster}, force)
	if err != nil {
		return err
	}
	res, err := write(r.Context(), cluster, app, c.author, rev)
	if err != nil {
		return err
	}
	if res.Committed {
		a.metrics.committed(r.Context(), op)
		a.log.Info("desired state changed", "message", res.Message, "revision", res.Revision, "by", c.author.Name)
		a.overridden(r.Context(), held, c.author.Name)
	}
	setETag(w, res.Revision)
	writeJSON(w, http.StatusOK, apiv1.ChangeResult{
		Cluster: cluster, App: app, Version: res.After, PreviousVersion: res.Before,
		Changed: res.Committed, Message: res.Message, Revision: res.Revision,
	})
	return nil
}

// setVersion answers PUT /api/v1/clusters/{cluster}/apps/{app}.
func (a *API) setVersion(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.SetVersionRequest
	// The path is checked first: a bad name is reported as such, whatever the body.
	if _, err := pathName(r, "cluster"); err != nil {
		return err
	}
	if _, err := pathName(r, "app"); err != nil {
		return err
	}
	if err := decodeBody(r, apiv1.MaxRequestBytes, &req); err != nil {
		return err
	}
	return a.changeApp(w, r, c, "set", func(ctx context.Context, cluster, app string, author gitstore.Author, ifMatch string) (*gitstore.WriteResult, error) {
		return a.cfg.Git.SetVersion(ctx, cluster, app, req.Version, author, ifMatch)
	})
}

// unsetVersion answers DELETE /api/v1/clusters/{cluster}/apps/{app}.
func (a *API) unsetVersion(w http.ResponseWriter, r *http.Request, c *caller) error {
	return a.changeApp(w, r, c, "unset", a.cfg.Git.Unset)
}

// rollback answers POST /api/v1/clusters/{cluster}/apps/{app}/rollback.
func (a *API) rollback(w http.ResponseWriter, r *http.Request, c *caller) error {
	return a.changeApp(w, r, c, "rollback", a.cfg.Git.Rollback)
}

// history answers GET /api/v1/clusters/{cluster}/history?app=&limit=.
func (a *API) history(w http.ResponseWriter, r *http.Request, _ *caller) error {
	cluster, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	app, err := queryName(r, "app")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", gitstore.DefaultHistoryLimit, 1, apiv1.MaxHistoryLimit)
	if err != nil {
		return err
	}
	if err := a.knownCluster(r.Context(), cluster); err != nil {
		return err
	}
	out, err := a.historyOf(r.Context(), cluster, app, int(limit))
	if err != nil {
		return err
	}
	setETag(w, a.cfg.Git.Head())
	writeJSON(w, http.StatusOK, out)
	return nil
}

// History returns at most limit commits that changed a registered cluster, newest
// first: the answer of GET /api/v1/clusters/{cluster}/history, for the dashboard.
func (a *API) History(ctx context.Context, cluster string, limit int) (*apiv1.HistoryList, error) {
	if err := a.knownCluster(ctx, cluster); err != nil {
		return nil, err
	}
	return a.historyOf(ctx, cluster, "", limit)
}

func (a *API) historyOf(ctx context.Context, cluster, app string, limit int) (*apiv1.HistoryList, error) {
	entries, err := a.cfg.Git.History(ctx, cluster, app, limit)
	if err != nil {
		return nil, err
	}
	out := &apiv1.HistoryList{Entries: make([]apiv1.HistoryEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, apiv1.HistoryEntry{
			Commit: e.Revision, Author: e.Author.Name, Email: e.Author.Email, Time: e.Time.UTC(),
			Message: e.Message, Before: e.Before, After: e.After,
		})
	}
	return out, nil
}
