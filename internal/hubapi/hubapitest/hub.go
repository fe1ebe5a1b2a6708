package hubapitest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Hub is the fake hub. It is safe for concurrent use.
type Hub struct {
	mu       sync.Mutex
	now      func() time.Time
	tokens   map[string]string // admin token → author
	clusters map[string]*cluster
	commits  int
	revision string
	// rotations counts token rotations, for stable fake tokens.
	rotations int
	events    []apiv1.Event // oldest first
	requests  []Request
	// Unavailable makes every API request answer 503 when set (under mu).
	unavailable bool
}

type cluster struct {
	info    apiv1.Cluster
	token   string
	desired map[string]string // app → version
	apps    map[string]*apiv1.AppState
	history []commit // newest first
}

// commit is a change of a cluster's desired state: the app it changed ("" for the
// cluster itself) and its history entry, with the app's versions before and after.
type commit struct {
	app   string
	entry apiv1.HistoryEntry
}

// Request is a request the fake hub received.
type Request struct {
	// Method and Path are the request's method and URL path.
	Method, Path string
	// Query is the raw query.
	Query string
	// Header holds the request's headers.
	Header http.Header
	// Body is the request's body.
	Body []byte
	// Author is who the token maps to; empty when it maps to nobody.
	Author string
}

// New returns an empty fake hub whose clock is now (time.Now when nil).
func New(now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	h := &Hub{now: now, tokens: map[string]string{}, clusters: map[string]*cluster{}}
	h.revision = h.nextRevision()
	return h
}

// AddToken lets token call the API as author.
func (h *Hub) AddToken(token, author string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[token] = author
}

// SetUnavailable makes every API request answer 503 unavailable, or not.
func (h *Hub) SetUnavailable(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unavailable = v
}

// Requests returns the requests received so far.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// Revision returns the current revision of the fake desired state.
func (h *Hub) Revision() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.revision
}

func (h *Hub) nextRevision() string {
	h.commits++
	sum := sha1.Sum([]byte("commit " + strconv.Itoa(h.commits)))
	return hex.EncodeToString(sum[:])
}

// Register registers a cluster as POST /api/v1/clusters does and returns its agent
// token; a *apiv1.ErrorResponse (conflict) if it exists.
func (h *Hub) Register(name string, labels map[string]string) (apiv1.RegisterClusterResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.register(name, labels, "admin")
}

func (h *Hub) register(name string, labels map[string]string, author string) (apiv1.RegisterClusterResponse, error) {
	if _, ok := h.clusters[name]; ok {
		return apiv1.RegisterClusterResponse{}, &apiv1.ErrorResponse{
			Code: apiv1.CodeConflict, Message: fmt.Sprintf("cluster %q is registered already", name), Field: "name",
		}
	}
	c := &cluster{
		info: apiv1.Cluster{Name: name, Labels: labels, CreatedAt: h.now().UTC()},
		// A fixed token pattern keeps golden files stable.
		token:   "opa_FAKE" + name,
		desired: map[string]string{},
		apps:    map[string]*apiv1.AppState{},
	}
	h.clusters[name] = c
	h.commit(c, "", author, "add cluster "+name, "", "")
	return apiv1.RegisterClusterResponse{Cluster: h.clusterInfo(c), Token: c.token}, nil
}

// Set sets app to version on cluster as author, as PUT .../apps/{app} does.
func (h *Hub) Set(cluster, app, version, author string) (*apiv1.ChangeResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set(cluster, app, version, author, "")
}

func (h *Hub) set(name, app, version, author, verb string) (*apiv1.ChangeResult, error) {
	c, err := h.cluster(name)
	if err != nil {
		return nil, err
	}
	prev := c.desired[app]
	msg := fmt.Sprintf("set %s=%s on %s", app, version, name)
	if verb == "rollback" {
		msg = fmt.Sprintf("rollback %s on %s to %s", app, name, version)
	}
	res := &apiv1.ChangeResult{Cluster: name, App: app, Version: version, PreviousVersion: prev, Message: msg}
	if prev == version {
		res.Revision = h.revision
		return res, nil
	}
	c.desired[app] = version
	h.commit(c, app, author, msg, prev, version)
	res.Changed, res.Revision = true, h.revision
	return res, nil
}

func (h *Hub) unset(name, app, author string) (*apiv1.ChangeResult, error) {
	c, err := h.cluster(name)
	if err != nil {
		return nil, err
	}
	prev, ok := c.desired[app]
	if !ok {
		return nil, notFound("app", "app %q is not set on cluster %q", app, name)
	}
	delete(c.desired, app)
	msg := fmt.Sprintf("unset %s on %s", app, name)
	h.commit(c, app, author, msg, prev, "")
	return &apiv1.ChangeResult{Cluster: name, App: app, PreviousVersion: prev, Changed: true, Message: msg, Revision: h.revision}, nil
}

func (h *Hub) rollback(name, app, author string) (*apiv1.ChangeResult, error) {
	c, err := h.cluster(name)
	if err != nil {
		return nil, err
	}
	cur, ok := c.desired[app]
	if !ok {
		return nil, notFound("app", "app %q is not set on cluster %q", app, name)
	}
	for _, cm := range c.history {
		if cm.app == app && cm.entry.Before != "" && cm.entry.Before != cur {
			return h.set(name, app, cm.entry.Before, author, "rollback")
		}
	}
	return nil, notFound("app", "no previous version of app %q on cluster %q", app, name)
}

func (h *Hub) commit(c *cluster, app, author, msg, before, after string) {
	h.revision = h.nextRevision()
	c.history = append([]commit{{app: app, entry: apiv1.HistoryEntry{
		Commit: h.revision, Author: author, Email: author + "@example.com", Time: h.now().UTC(),
		Message: msg, Before: before, After: after,
	}}}, c.history...)
}

// History answers GET /api/v1/clusters/{cluster}/history?app=&limit= (limit 0: 50).
func (h *Hub) History(name, app string, limit int) (*apiv1.HistoryList, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.cluster(name)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 50
	}
	out := &apiv1.HistoryList{Entries: []apiv1.HistoryEntry{}}
	for _, cm := range c.history {
		if len(out.Entries) == limit {
			break
		}
		e := cm.entry
		switch {
		case app == "":
			e.Before, e.After = "", ""
		case cm.app != app:
			continue
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}

// Report stores an app's reported status and drift as if its agent had reported it,
// received at the hub's now, and records an event.
func (h *Hub) Report(name string, st apiv1.AppStatus, drift []apiv1.Drift) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.cluster(name)
	if err != nil {
		return err
	}
	now := h.now().UTC()
	c.info.LastReportAt = now
	c.info.Agent = apiv1.AgentInfo{ID: "outpost-agent-" + name, Version: "0.1.0"}
	c.apps[st.App] = &apiv1.AppState{AppStatus: st, Drift: drift, ReceivedAt: now}
	ev := apiv1.Event{
		ID: int64(len(h.events) + 1), Cluster: name, App: st.App, Type: apiv1.EventSync, Time: now,
		Revision: st.Revision, Version: st.Version, Phase: st.Phase, Health: st.Health.Status,
		Message: fmt.Sprintf("synced %s", st.Version), DurationMs: st.Durations.TotalMs,
	}
	switch {
	case st.Error != nil:
		ev.Type, ev.Message, ev.DurationMs = apiv1.EventError, fmt.Sprintf("%s failed: %s", st.Error.Stage, st.Error.Message), 0
	case len(drift) > 0:
		ev.Type, ev.Drifted, ev.DurationMs = apiv1.EventDrift, len(drift), 0
		ev.Message = fmt.Sprintf("%d object(s) drifted: %s", len(drift), drift[0].Object)
	}
	h.events = append(h.events, ev)
	return nil
}

func (h *Hub) cluster(name string) (*cluster, error) {
	c, ok := h.clusters[name]
	if !ok {
		return nil, notFound("cluster", "cluster %q is not registered", name)
	}
	return c, nil
}

func notFound(field, format string, args ...any) *apiv1.ErrorResponse {
	return &apiv1.ErrorResponse{Code: apiv1.CodeNotFound, Message: fmt.Sprintf(format, args...), Field: field}
}

func (h *Hub) clusterInfo(c *cluster) apiv1.Cluster {
	info := c.info
	var s apiv1.ClusterSummary
	for _, a := range c.apps {
		if a.Phase == apiv1.PhaseRemoved {
			continue
		}
		s.Apps++
		switch a.Phase {
		case apiv1.PhaseSynced:
			s.Synced++
		case apiv1.PhasePending, apiv1.PhaseSyncing:
			s.Syncing++
		case apiv1.PhaseFailed, apiv1.PhaseSourceUnavailable:
			s.Failed++
		}
		switch a.Health.Status {
		case apiv1.HealthCurrent:
			s.Healthy++
		case apiv1.HealthFailed, apiv1.HealthTimeout:
			s.Unhealthy++
		}
		if len(a.Drift) > 0 {
			s.Drifted++
		}
	}
	info.Summary = s
	return info
}

// ClusterList answers GET /api/v1/clusters.
func (h *Hub) ClusterList() *apiv1.ClusterList {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := &apiv1.ClusterList{Clusters: []apiv1.Cluster{}}
	for _, name := range slices.Sorted(maps.Keys(h.clusters)) {
		out.Clusters = append(out.Clusters, h.clusterInfo(h.clusters[name]))
	}
	return out
}

// ClusterStatus answers GET /api/v1/clusters/{cluster}/status; a *apiv1.ErrorResponse
// (not_found) for an unknown cluster.
func (h *Hub) ClusterStatus(_ context.Context, name string) (*apiv1.ClusterStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.cluster(name)
	if err != nil {
		return nil, err
	}
	out := &apiv1.ClusterStatus{Cluster: h.clusterInfo(c), Revision: h.revision, Apps: []apiv1.AppState{}}
	names := slices.Collect(maps.Keys(c.desired))
	for app := range c.apps {
		if _, ok := c.desired[app]; !ok {
			names = append(names, app)
		}
	}
	slices.Sort(names)
	for _, app := range names {
		st := apiv1.AppState{AppStatus: apiv1.AppStatus{App: app}}
		if a, ok := c.apps[app]; ok {
			st = *a
		}
		st.DesiredVersion = c.desired[app]
		out.Apps = append(out.Apps, st)
	}
	return out, nil
}

// Matrix answers GET /api/v1/matrix.
func (h *Hub) Matrix(context.Context) (*apiv1.Matrix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := &apiv1.Matrix{Revision: h.revision, Apps: []string{}, Clusters: []apiv1.MatrixRow{}}
	apps := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(h.clusters)) {
		c := h.clusters[name]
		row := apiv1.MatrixRow{Cluster: name, Labels: c.info.Labels, Apps: map[string]apiv1.MatrixCell{}}
		for app, v := range c.desired {
			row.Apps[app] = apiv1.MatrixCell{DesiredVersion: v}
			apps[app] = true
		}
		for app, a := range c.apps {
			row.Apps[app] = apiv1.MatrixCell{
				DesiredVersion: c.desired[app], Version: a.Version, Revision: a.Revision,
				Phase: a.Phase, Health: a.Health.Status, Drifted: len(a.Drift), LastSyncedAt: a.LastSyncedAt,
			}
			apps[app] = true
		}
		out.Clusters = append(out.Clusters, row)
	}
	out.Apps = slices.Sorted(maps.Keys(apps))
	return out, nil
}

// Events answers GET /api/v1/events?cluster=&limit= (newest first; limit 0: 100).
func (h *Hub) Events(_ context.Context, clusterName string, limit int) (*apiv1.EventList, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	out := &apiv1.EventList{Events: []apiv1.Event{}}
	for i := len(h.events) - 1; i >= 0 && len(out.Events) < limit; i-- {
		if clusterName == "" || h.events[i].Cluster == clusterName {
			out.Events = append(out.Events, h.events[i])
		}
	}
	return out, nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeError writes err as an ErrorResponse; errors that are not one are 500.
func writeError(w http.ResponseWriter, err error) {
	var er *apiv1.ErrorResponse
	if !errors.As(err, &er) {
		er = &apiv1.ErrorResponse{Code: apiv1.CodeInternal, Message: err.Error()}
	}
	writeJSON(w, er.Code.HTTPStatus(), er)
}
