package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
)

// listClusters answers GET /api/v1/clusters: the registered clusters, with summaries
// at most Config.SummaryTTL old.
func (a *API) listClusters(w http.ResponseWriter, r *http.Request, _ *caller) error {
	ctx := r.Context()
	cs, err := a.cfg.Store.ListClusters(ctx)
	if err != nil {
		return err
	}
	sums, err := a.summaries.clusterSummaries(ctx)
	if err != nil {
		return err
	}
	out := apiv1.ClusterList{Clusters: make([]apiv1.Cluster, 0, len(cs))}
	for _, c := range cs {
		out.Clusters = append(out.Clusters, c.API(sums[c.Name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getCluster answers GET /api/v1/clusters/{cluster}.
func (a *API) getCluster(w http.ResponseWriter, r *http.Request, _ *caller) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	c, err := a.registered(r.Context(), name)
	if err != nil {
		return err
	}
	apps, err := a.cfg.Store.AppSummaries(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.API(summarizeApps(apps)))
	return nil
}

// registered returns a registered cluster, or a 404 naming it.
func (a *API) registered(ctx context.Context, name string) (store.Cluster, error) {
	c, err := a.cfg.Store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return c, errNotFound("cluster", "cluster %q is not registered", name)
	}
	return c, err
}

// registerCluster answers POST /api/v1/clusters: the cluster is registered with a new
// agent token, and clusters/<name>/ is committed unless Git has it already. The token
// is in the answer, and nowhere else.
func (a *API) registerCluster(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.RegisterClusterRequest
	if err := decodeBody(r, apiv1.MaxRequestBytes, &req); err != nil {
		return err
	}
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	snap, err := a.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		return err
	}
	labels := req.Labels
	if gc := snap.Cluster(req.Name); gc != nil && len(labels) == 0 {
		labels = gc.Labels // Git defines the cluster already: show its labels
	}
	token, hash := store.NewToken()
	cl, err := a.cfg.Store.RegisterCluster(ctx, store.NewCluster{Name: req.Name, Labels: labels, TokenHash: hash, CreatedAt: a.cfg.Now()})
	if err != nil {
		return err
	}
	res, err := a.cfg.Git.AddCluster(ctx, req.Name, req.Labels, c.author, rev)
	var exists *gitstore.ExistsError
	switch {
	case errors.As(err, &exists):
		// A person added the cluster to Git: registering only creates its token.
		setETag(w, a.cfg.Git.Head())
	case err != nil:
		// Nothing may stay of a failed request: unregister, even if the caller left.
		if derr := a.cfg.Store.DeleteCluster(context.WithoutCancel(ctx), req.Name); derr != nil {
			a.log.Error("undo the registration of a cluster whose commit failed", "cluster", req.Name, "err", derr)
		}
		return err
	default:
		if res.Committed {
			a.metrics.committed(ctx, "register")
		}
		setETag(w, res.Revision)
	}
	a.log.Info("cluster registered", "cluster", req.Name, "by", c.author.Name)
	w.Header().Set("Location", "/api/v1/clusters/"+req.Name)
	writeJSON(w, http.StatusCreated, apiv1.RegisterClusterResponse{Cluster: cl.API(apiv1.ClusterSummary{}), Token: token})
	return nil
}

// rotateToken answers POST /api/v1/clusters/{cluster}/token: the cluster gets a new
// agent token, and the previous one stays valid for the grace period asked for. Git is
// not touched: rotation never changes what any cluster runs.
func (a *API) rotateToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	var req apiv1.RotateTokenRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, apiv1.MaxRequestBytes, &req); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if _, err := a.registered(ctx, name); err != nil {
		return err
	}
	token, hash := store.NewToken()
	now := a.cfg.Now()
	until := now.Add(time.Duration(req.GraceSeconds) * time.Second)
	if err := a.cfg.Store.RotateToken(ctx, name, hash, until); errors.Is(err, store.ErrNotFound) {
		return errNotFound("cluster", "cluster %q is not registered", name)
	} else if err != nil {
		return err
	}
	out := apiv1.RotateTokenResponse{Cluster: name, Token: token}
	if req.GraceSeconds > 0 {
		out.PreviousValidUntil = &until
	}
	a.log.Info("agent token rotated", "cluster", name, "by", c.author.Name, "grace", time.Duration(req.GraceSeconds)*time.Second)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteCluster answers DELETE /api/v1/clusters/{cluster}: clusters/<name>/ leaves Git
// (one commit) and the cluster its registry, with its token, status and events.
func (a *API) deleteCluster(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	inGit := true
	res, err := a.cfg.Git.RemoveCluster(ctx, name, c.author, rev)
	var nf *gitstore.NotFoundError
	switch {
	case errors.As(err, &nf) && nf.Kind == gitstore.KindCluster:
		inGit = false
	case err != nil:
		return err
	case res.Committed:
		a.metrics.committed(ctx, "remove-cluster")
	}
	// The commit is made: finish the removal even if the caller leaves.
	err = a.cfg.Store.DeleteCluster(context.WithoutCancel(ctx), name)
	switch {
	case errors.Is(err, store.ErrNotFound) && !inGit:
		return errNotFound("cluster", "cluster %q is neither registered nor in Git", name)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	a.cfg.Notifier.Forget(name)
	a.log.Info("cluster deleted", "cluster", name, "by", c.author.Name)
	setETag(w, a.cfg.Git.Head())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// clusterStatus answers GET /api/v1/clusters/{cluster}/status.
func (a *API) clusterStatus(w http.ResponseWriter, r *http.Request, _ *caller) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	out, err := a.ClusterStatus(r.Context(), name)
	if err != nil {
		return err
	}
	setETag(w, out.Revision)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ClusterStatus returns a cluster's status: per app (desired in Git or reported), its
// desired version, last reported status and drift. A cluster known only to Git (not
// registered) is shown without registration data; an unknown cluster is an error
// wrapping an *apiv1.ErrorResponse with code not_found.
func (a *API) ClusterStatus(ctx context.Context, name string) (*apiv1.ClusterStatus, error) {
	if err := apiv1.ValidateName("cluster", name); err != nil {
		return nil, err
	}
	snap, err := a.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		return nil, err
	}
	gc := snap.Cluster(name)
	reg, err := a.cfg.Store.GetCluster(ctx, name)
	registered := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound) && gc == nil:
		return nil, errNotFound("cluster", "cluster %q is neither registered nor in Git", name)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	recs, err := a.cfg.Store.Status(ctx, store.StatusQuery{Cluster: name})
	if err != nil {
		return nil, err
	}
	out := &apiv1.ClusterStatus{Revision: snap.Revision, Apps: []apiv1.AppState{}}
	if registered {
		out.Cluster = reg.API(summarizeRecords(recs))
	} else {
		out.Cluster = apiv1.Cluster{Name: name, Labels: gc.Labels, Summary: summarizeRecords(recs)}
	}
	byApp := map[string]*apiv1.AppState{}
	for _, rec := range recs {
		byApp[rec.Status.App] = &apiv1.AppState{AppStatus: rec.Status, Drift: rec.Drift, ReceivedAt: rec.ReceivedAt}
	}
	if gc != nil {
		for _, av := range gc.Apps {
			st, ok := byApp[av.Name]
			if !ok {
				st = &apiv1.AppState{AppStatus: apiv1.AppStatus{App: av.Name}}
				byApp[av.Name] = st
			}
			st.DesiredVersion = av.Version
		}
	}
	for _, app := range slices.Sorted(maps.Keys(byApp)) {
		out.Apps = append(out.Apps, *byApp[app])
	}
	return out, nil
}

// matrix answers GET /api/v1/matrix.
func (a *API) matrix(w http.ResponseWriter, r *http.Request, _ *caller) error {
	out, err := a.Matrix(r.Context())
	if err != nil {
		return err
	}
	setETag(w, out.Revision)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Matrix returns every cluster (registered or in Git) × every app (desired or
// reported), the reported state at most Config.SummaryTTL old.
func (a *API) Matrix(ctx context.Context) (*apiv1.Matrix, error) {
	snap, err := a.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		return nil, err
	}
	regs, err := a.cfg.Store.ListClusters(ctx)
	if err != nil {
		return nil, err
	}
	sums, err := a.summaries.appSummaries(ctx)
	if err != nil {
		return nil, err
	}
	rows := map[string]*apiv1.MatrixRow{}
	row := func(name string) *apiv1.MatrixRow {
		if rw, ok := rows[name]; ok {
			return rw
		}
		rw := &apiv1.MatrixRow{Cluster: name, Apps: map[string]apiv1.MatrixCell{}}
		rows[name] = rw
		return rw
	}
	for _, c := range regs {
		row(c.Name).Labels = c.Labels
	}
	desired := map[string]bool{} // "cluster/app" desired in Git
	for _, gc := range snap.Clusters {
		rw := row(gc.Name)
		if len(gc.Labels) > 0 {
			rw.Labels = gc.Labels // Git's labels are the ones rendering uses
		}
		for _, av := range gc.Apps {
			rw.Apps[av.Name] = apiv1.MatrixCell{DesiredVersion: av.Version}
			desired[gc.Name+"/"+av.Name] = true
		}
	}
	for _, s := range sums {
		rw, ok := rows[s.Cluster]
		if !ok || (s.Phase == apiv1.PhaseRemoved && !desired[s.Cluster+"/"+s.App]) {
			continue // a deleted cluster's leftovers, or a removed app's tombstone
		}
		cell := rw.Apps[s.App]
		cell.Version, cell.Revision, cell.Phase, cell.Health = s.Version, s.Revision, s.Phase, s.Health
		cell.Drifted, cell.LastSyncedAt = s.Drifted, s.LastSyncedAt
		rw.Apps[s.App] = cell
	}
	apps := map[string]bool{}
	out := &apiv1.Matrix{Revision: snap.Revision, Clusters: make([]apiv1.MatrixRow, 0, len(rows))}
	for _, name := range slices.Sorted(maps.Keys(rows)) {
		out.Clusters = append(out.Clusters, *rows[name])
		for app := range rows[name].Apps {
			apps[app] = true
		}
	}
	out.Apps = slices.Sorted(maps.Keys(apps))
	if out.Apps == nil {
		out.Apps = []string{}
	}
	return out, nil
}

// knownCluster returns nil when the cluster is registered or in Git at the head, else
// a 404 naming it.
func (a *API) knownCluster(ctx context.Context, name string) error {
	snap, err := a.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		return err
	}
	if snap.Cluster(name) != nil {
		return nil
	}
	_, err = a.cfg.Store.GetCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("cluster", "cluster %q is neither registered nor in Git", name)
	}
	if err != nil {
		return fmt.Errorf("look up cluster %q: %w", name, err)
	}
	return nil
}
