package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/store"
)

// report answers POST /api/v1/agent/report: a validated report of the token's own
// cluster is stored; each app's state only if its generation is newer than the
// stored one.
func (a *API) report(w http.ResponseWriter, r *http.Request, c *caller) error {
	var rep apiv1.StatusReport
	if err := decodeBody(r, apiv1.MaxReportBytes, &rep); err != nil {
		return err
	}
	if err := checkCluster(c, "cluster", rep.Cluster); err != nil {
		return err
	}
	now := a.cfg.Now()
	if err := rep.CheckEpochs(now); err != nil {
		return err
	}
	res, err := a.cfg.Store.ApplyReport(r.Context(), &rep, now)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted between the token's lookup and now.
		return errUnauthorized("the cluster of this token is not registered any more")
	}
	if err != nil {
		return err
	}
	a.metrics.reported(r.Context(), len(res.Stored), len(res.Stale))
	if a.cfg.Rollouts != nil && len(res.Stored) > 0 {
		a.cfg.Rollouts.Wake() // a rollout gate may pass or fail on this report
	}
	a.forgetApps(r.Context(), rep.Cluster, now)
	out := apiv1.ReportResponse{Stored: res.Stored, Stale: res.Stale}
	if out.Stored == nil {
		out.Stored = []string{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// desired answers the long-poll GET /api/v1/agent/desired?cluster=&since=: at once
// when the cluster's desired state changed after since, else when a publish touches
// the cluster or the notifier's hold time ends. Its write deadline is extended past
// the hold; Drain answers it at once with 503.
func (a *API) desired(w http.ResponseWriter, r *http.Request, c *caller) error {
	cluster, err := singleQuery(r, "cluster")
	if err != nil {
		return err
	}
	if err := apiv1.ValidateName("cluster", cluster); err != nil {
		return err
	}
	since, err := singleQuery(r, "since")
	if err != nil {
		return err
	}
	if err := apiv1.ValidateRevision("since", since); err != nil {
		return err
	}
	if err := checkCluster(c, "cluster", cluster); err != nil {
		return err
	}
	if a.draining.Err() != nil {
		return &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "the hub is shutting down"}, retryAfter: "5"}
	}
	// Each long-poll holds a connection: one cluster's token gets a few at once.
	if !a.longPolls.Acquire(c.key) {
		return tooMany(fmt.Sprintf("cluster %s holds %d long-polls already", cluster, a.cfg.MaxLongPollsPerCluster))
	}
	defer a.longPolls.Release(c.key)
	extendDeadlines(w, a.cfg.LongPollHold+longPollMargin)
	ctx, cancel := contextUntil(r.Context(), a.draining)
	defer cancel()
	ans, err := a.cfg.Notifier.Wait(ctx, cluster, since)
	switch {
	case err == nil:
	case a.draining.Err() != nil:
		return &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "the hub is shutting down"}, retryAfter: "5"}
	case r.Context().Err() != nil:
		return nil // the agent left: nobody to answer
	default:
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// extendDeadlines lets a response take d from now, past the server's ReadTimeout and
// WriteTimeout: the write deadline bounds the answer, and the read deadline, left at
// the server's, would cancel the request's context when it passes. (Not every
// ResponseWriter supports deadlines, e.g. a recorder in tests.)
func extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// forgetClock remembers when each cluster's stale apps were last forgotten.
type forgetClock struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether cluster's turn has come, and takes it.
func (f *forgetClock) due(cluster string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.last[cluster]) < forgetEvery {
		return false
	}
	f.last[cluster] = now
	return true
}

// forgetApps removes, at most once a minute per cluster, the status of the cluster's
// apps that left its apps.yaml (or never were in it: names an agent token made up) and
// were not reported for UndesiredAppRetention, and of any app not reported for
// StaleAppRetention. A failure is logged: the report itself was stored.
func (a *API) forgetApps(ctx context.Context, cluster string, now time.Time) {
	if !a.forgotten.due(cluster, now) {
		return
	}
	snap, err := a.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		a.log.Warn("forget stale apps: read the desired state", "cluster", cluster, "err", err)
		return
	}
	desired := map[string]bool{}
	if gc := snap.Cluster(cluster); gc != nil {
		for _, app := range gc.Apps {
			desired[app.Name] = true
		}
	}
	gone, err := a.cfg.Store.ForgetApps(ctx, cluster, desired, now.Add(-a.cfg.UndesiredAppRetention), now.Add(-a.cfg.StaleAppRetention))
	if err != nil {
		a.log.Warn("forget stale apps", "cluster", cluster, "err", err)
		return
	}
	if len(gone) > 0 {
		a.log.Info("forgot the status of apps no longer deployed or reported", "cluster", cluster, "apps", gone)
	}
}
