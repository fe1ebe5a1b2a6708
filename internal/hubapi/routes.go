package hubapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// WriteOptions are the options of a write of desired state.
type WriteOptions struct {
	// IfMatch is a revision: the write is refused with 409 conflict when the desired
	// state of the cluster changed since. Empty: unconditional. Sent quoted as an entity
	// tag; a value quoted already is sent as is.
	IfMatch string
	// Force writes even when an active rollout of the app holds the cluster: the
	// hub marks the cluster overridden in the run and pauses it (query force=true).
	// Without it such a write is refused with 409 conflict naming the run.
	Force bool
}

// query is the write's query string.
func (o WriteOptions) query() url.Values {
	if !o.Force {
		return nil
	}
	return url.Values{"force": {"true"}}
}

// HistoryQuery selects history entries.
type HistoryQuery struct {
	// App restricts the history to one app on the cluster; empty for all.
	App string
	// Limit bounds the number of entries; 0 for the hub's default (50).
	Limit int
}

// EventQuery selects events. Empty fields do not filter.
type EventQuery struct {
	// Cluster restricts to one cluster.
	Cluster string
	// App restricts to one app.
	App string
	// Type restricts to one event type.
	Type apiv1.EventType
	// Before pages to events older than this ID; 0 for the newest.
	Before int64
	// Limit bounds the number of events; 0 for the hub's default (100).
	Limit int
}

const apiPrefix = "/api/v1"

func clusterPath(cluster string) string {
	return apiPrefix + "/clusters/" + url.PathEscape(cluster)
}

func appPath(cluster, app string) string {
	return clusterPath(cluster) + "/apps/" + url.PathEscape(app)
}

// ListClusters returns the registered clusters with their summaries
// (GET /api/v1/clusters).
func (c *Client) ListClusters(ctx context.Context) (*apiv1.ClusterList, error) {
	var out apiv1.ClusterList
	if err := c.do(ctx, request{method: http.MethodGet, path: apiPrefix + "/clusters", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetCluster returns one cluster (GET /api/v1/clusters/{cluster}).
func (c *Client) GetCluster(ctx context.Context, cluster string) (*apiv1.Cluster, error) {
	var out apiv1.Cluster
	if err := c.do(ctx, request{method: http.MethodGet, path: clusterPath(cluster), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// RegisterCluster registers a cluster (POST /api/v1/clusters). The answer holds the
// cluster's agent token, which the hub never shows again.
func (c *Client) RegisterCluster(ctx context.Context, req apiv1.RegisterClusterRequest) (*apiv1.RegisterClusterResponse, error) {
	var out apiv1.RegisterClusterResponse
	err := c.do(ctx, request{
		method: http.MethodPost, path: apiPrefix + "/clusters", body: req,
		want: []int{http.StatusCreated, http.StatusOK}, out: &out, once: true,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateToken gives a cluster's agent a new token; the previous one stays valid for
// grace (POST /api/v1/clusters/{cluster}/token). Nothing changes in Git.
func (c *Client) RotateToken(ctx context.Context, cluster string, grace time.Duration) (*apiv1.RotateTokenResponse, error) {
	var out apiv1.RotateTokenResponse
	err := c.do(ctx, request{
		method: http.MethodPost, path: clusterPath(cluster) + "/token",
		body: apiv1.RotateTokenRequest{GraceSeconds: int64(grace / time.Second)},
		want: []int{http.StatusOK}, out: &out, once: true,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCluster removes a cluster from Git and the hub
// (DELETE /api/v1/clusters/{cluster}).
func (c *Client) DeleteCluster(ctx context.Context, cluster string, opts WriteOptions) error {
	return c.do(ctx, request{
		method: http.MethodDelete, path: clusterPath(cluster), ifMatch: opts.IfMatch,
		want: []int{http.StatusNoContent, http.StatusOK},
	})
}

// ClusterStatus returns the per-app status and drift of a cluster
// (GET /api/v1/clusters/{cluster}/status).
func (c *Client) ClusterStatus(ctx context.Context, cluster string) (*apiv1.ClusterStatus, error) {
	var out apiv1.ClusterStatus
	if err := c.do(ctx, request{method: http.MethodGet, path: clusterPath(cluster) + "/status", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Matrix returns every app × every cluster (GET /api/v1/matrix).
func (c *Client) Matrix(ctx context.Context) (*apiv1.Matrix, error) {
	var out apiv1.Matrix
	if err := c.do(ctx, request{method: http.MethodGet, path: apiPrefix + "/matrix", out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetVersion sets an app's version on a cluster, adding the app if needed
// (PUT /api/v1/clusters/{cluster}/apps/{app}).
func (c *Client) SetVersion(ctx context.Context, cluster, app, version string, opts WriteOptions) (*apiv1.ChangeResult, error) {
	var out apiv1.ChangeResult
	err := c.do(ctx, request{
		method: http.MethodPut, path: appPath(cluster, app), ifMatch: opts.IfMatch, query: opts.query(),
		body: apiv1.SetVersionRequest{Version: version}, out: &out,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UnsetApp removes an app from a cluster (DELETE /api/v1/clusters/{cluster}/apps/{app}).
func (c *Client) UnsetApp(ctx context.Context, cluster, app string, opts WriteOptions) (*apiv1.ChangeResult, error) {
	var out apiv1.ChangeResult
	err := c.do(ctx, request{method: http.MethodDelete, path: appPath(cluster, app), ifMatch: opts.IfMatch, query: opts.query(), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Rollback sets an app on a cluster back to the version it had before its current one
// in Git history (POST /api/v1/clusters/{cluster}/apps/{app}/rollback).
func (c *Client) Rollback(ctx context.Context, cluster, app string, opts WriteOptions) (*apiv1.ChangeResult, error) {
	var out apiv1.ChangeResult
	err := c.do(ctx, request{
		method: http.MethodPost, path: appPath(cluster, app) + "/rollback", ifMatch: opts.IfMatch, query: opts.query(),
		out: &out, once: true,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Bulk sets, unsets or rolls back an app on every cluster req selects (a label
// selector and/or a list) as one commit, or with req.DryRun answers what would change
// (POST /api/v1/apps/{app}/bulk). req.IfMatch, when set, guards the whole write: the
// hub answers 409 when the selection or any selected apps.yaml changed since. A dry run
// is retried like a read; a write only when it surely did not reach the hub.
// opts.IfMatch, when set, is sent as the If-Match header (it must then equal
// req.IfMatch, if that is set too).
func (c *Client) Bulk(ctx context.Context, app string, req apiv1.BulkRequest, opts WriteOptions) (*apiv1.BulkResult, error) {
	var out apiv1.BulkResult
	err := c.do(ctx, request{
		method: http.MethodPost, path: apiPrefix + "/apps/" + url.PathEscape(app) + "/bulk",
		ifMatch: opts.IfMatch, query: opts.query(), body: req, out: &out, once: !req.DryRun,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Diff renders what head changes relative to base on every cluster (GET
// /api/v1/diff); empty head is the hub's head, empty base head's first parent.
func (c *Client) Diff(ctx context.Context, base, head string) (*fleetdiff.Result, error) {
	query := url.Values{}
	if base != "" {
		query.Set("base", base)
	}
	if head != "" {
		query.Set("head", head)
	}
	var out fleetdiff.Result
	if err := c.do(ctx, request{method: http.MethodGet, path: apiPrefix + "/diff", query: query, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// History returns the commits that changed a cluster's desired state, newest first
// (GET /api/v1/clusters/{cluster}/history).
func (c *Client) History(ctx context.Context, cluster string, q HistoryQuery) (*apiv1.HistoryList, error) {
	query := url.Values{}
	if q.App != "" {
		query.Set("app", q.App)
	}
	if q.Limit > 0 {
		query.Set("limit", strconv.Itoa(q.Limit))
	}
	var out apiv1.HistoryList
	err := c.do(ctx, request{method: http.MethodGet, path: clusterPath(cluster) + "/history", query: query, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Events returns the hub's event history, newest first (GET /api/v1/events).
func (c *Client) Events(ctx context.Context, q EventQuery) (*apiv1.EventList, error) {
	query := url.Values{}
	for k, v := range map[string]string{"cluster": q.Cluster, "app": q.App, "type": string(q.Type)} {
		if v != "" {
			query.Set(k, v)
		}
	}
	if q.Before > 0 {
		query.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Limit > 0 {
		query.Set("limit", strconv.Itoa(q.Limit))
	}
	var out apiv1.EventList
	if err := c.do(ctx, request{method: http.MethodGet, path: apiPrefix + "/events", query: query, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Report sends an agent's status report (POST /api/v1/agent/report); the client's
// token must be that cluster's agent token.
func (c *Client) Report(ctx context.Context, r *apiv1.StatusReport) (*apiv1.ReportResponse, error) {
	var out apiv1.ReportResponse
	// A report is idempotent at the hub (ordered by generation), but it is a POST:
	// retried only when it surely did not arrive, like the other POSTs.
	if err := c.do(ctx, request{method: http.MethodPost, path: apiv1.ReportPath, body: r, out: &out, once: true}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Desired long-polls the desired revision of a cluster
// (GET /api/v1/agent/desired?cluster=&since=): the hub answers at once when the
// cluster's desired state changed after since, else when it changes or after about
// 30 s. Bounded by Options.LongPollTimeout.
func (c *Client) Desired(ctx context.Context, cluster, since string) (*apiv1.DesiredRevision, error) {
	query := url.Values{"cluster": {cluster}}
	if since != "" {
		query.Set("since", since)
	}
	var out apiv1.DesiredRevision
	err := c.do(ctx, request{
		method: http.MethodGet, path: apiv1.DesiredPath, query: query, out: &out,
		timeout: c.opts.LongPollTimeout,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// StartRollout starts a rollout of app to version, following rollouts/<app>.yaml
// (POST /api/v1/rollouts). Not retried once it may have reached the hub.
func (c *Client) StartRollout(ctx context.Context, app, version string) (*apiv1.Rollout, error) {
	var out apiv1.Rollout
	err := c.do(ctx, request{method: http.MethodPost, path: apiv1.RolloutsPath,
		body: apiv1.StartRolloutRequest{App: app, Version: version}, want: []int{http.StatusCreated}, out: &out, once: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRollouts returns the runs of app ("" for all), newest first; active keeps
// only the runs that hold their clusters (GET /api/v1/rollouts).
func (c *Client) ListRollouts(ctx context.Context, app string, active bool) (*apiv1.RolloutList, error) {
	query := url.Values{}
	if app != "" {
		query.Set("app", app)
	}
	if active {
		query.Set("active", "true")
	}
	var out apiv1.RolloutList
	if err := c.do(ctx, request{method: http.MethodGet, path: apiv1.RolloutsPath, query: query, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetRollout returns one run (GET /api/v1/rollouts/{id}).
func (c *Client) GetRollout(ctx context.Context, id string) (*apiv1.Rollout, error) {
	var out apiv1.Rollout
	if err := c.do(ctx, request{method: http.MethodGet, path: apiv1.RolloutsPath + "/" + url.PathEscape(id), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// RolloutAction pauses, resumes, approves, aborts or rolls back a run
// (POST /api/v1/rollouts/{id}/{action}).
func (c *Client) RolloutAction(ctx context.Context, id string, action apiv1.RolloutAction) (*apiv1.Rollout, error) {
	var out apiv1.Rollout
	err := c.do(ctx, request{method: http.MethodPost, path: apiv1.RolloutsPath + "/" + url.PathEscape(id) + "/" + url.PathEscape(string(action)),
		out: &out, once: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
