package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// pageData is what every page template gets.
type pageData struct {
	// Brand is Options.Title.
	Brand string
	// Title is the page's own title.
	Title string
	// Section marks the current navigation entry: "overview", "cluster" or
	// "rollouts".
	Section string
	// Rollouts tells whether the rollout pages exist (the Source is a
	// RolloutSource), for the navigation.
	Rollouts bool
	// Version is the fingerprint of the page's data; empty for pages that do not
	// refresh.
	Version string
	// Stream is the URL of the page's event stream; empty for none.
	Stream string
	// PollMs is the fallback polling period in milliseconds; 0 for none.
	PollMs int64
	// Now is when the page was rendered.
	Now time.Time
	// CSS, JS and Icon are the versioned URLs of the static files.
	CSS, JS, Icon string
	// Body is the page's own data.
	Body any
}

// overviewBody is the data of the overview page.
type overviewBody struct {
	Revision string
	Apps     []string
	Rows     []rowView
	Totals   totals
	Issues   []issueView
	// IssuesOmitted counts the clusters needing attention whose details are not shown.
	IssuesOmitted int
	Events        []eventView
}

// clusterBody is the data of a cluster page.
type clusterBody struct {
	Cluster  apiv1.Cluster
	Labels   []string
	Stale    bool
	Revision string
	Apps     []appView
	Issues   []issueView
	Events   []eventView
}

// errorBody is the data of an error page.
type errorBody struct {
	Heading string
	Message string
}

func (h *handler) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago":   func(t time.Time) string { return ago(h.opts.Now(), t) },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"short": shortRev,
		"trunc": func(s string) string { return truncate(s, maxValueLen) },
		"dur":   duration,
		// the commit page's unified diffs
		"diffLines": diffLines,
		"diffClass": diffLineClass,
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates/layout.html: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"overview", "cluster", "history", "commit", "rollouts", "rollout", "error"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse templates/%s.html: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render executes a page into a buffer first, so a template error never sends half a
// page.
func (h *handler) render(w http.ResponseWriter, status int, name string, data pageData) {
	data.Brand = h.opts.Title
	data.Rollouts = h.rollouts != nil
	data.Now = h.opts.Now()
	data.CSS, data.JS, data.Icon = h.assetURL("app.css"), h.assetURL("app.js"), h.assetURL("favicon.svg")
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.opts.Logger.Error("dashboard: render page", "page", name, "err", err)
		http.Error(w, "dashboard: rendering the page failed", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	d, err := h.loadOverview(ctx)
	if err != nil {
		h.sourceError(w, r, err)
		return
	}
	body := overviewBody{Revision: d.matrix.Revision, Apps: d.matrix.Apps, Events: eventViews(d.events)}
	body.Rows, body.Totals = matrixView(d.matrix, d.held)
	names := attentionClusters(d.matrix)
	if len(names) > h.opts.MaxDetailClusters {
		body.IssuesOmitted = len(names) - h.opts.MaxDetailClusters
		names = names[:h.opts.MaxDetailClusters]
	}
	for _, name := range names {
		st, err := h.src.ClusterStatus(ctx, name)
		if isNotFound(err) {
			continue // removed since the matrix was read
		}
		if err != nil {
			h.sourceError(w, r, fmt.Errorf("status of cluster %s: %w", name, err))
			return
		}
		body.Issues = append(body.Issues, issues(st)...)
	}
	h.render(w, http.StatusOK, "overview", pageData{
		Title: "Fleet overview", Section: "overview", Version: d.fingerprint,
		Stream: "/events/stream", PollMs: h.opts.FallbackPoll.Milliseconds(), Body: body,
	})
}

func (h *handler) cluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	if apiv1.ValidateName("cluster", name) != nil {
		h.notFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	d, err := h.loadCluster(ctx, name)
	if isNotFound(err) {
		h.renderError(w, http.StatusNotFound, "No such cluster",
			fmt.Sprintf("The hub has no cluster named %q. It may have been removed.", name))
		return
	}
	if err != nil {
		h.sourceError(w, r, err)
		return
	}
	st := d.status
	body := clusterBody{
		Cluster: st.Cluster, Labels: labelList(st.Cluster.Labels), Revision: st.Revision,
		Stale:  !st.Cluster.LastReportAt.IsZero() && h.opts.Now().Sub(st.Cluster.LastReportAt) > h.opts.StaleAfter,
		Apps:   appViews(st),
		Issues: issues(st), Events: eventViews(d.events),
	}
	h.render(w, http.StatusOK, "cluster", pageData{
		Title: "Cluster " + name, Section: "cluster", Version: d.fingerprint,
		Stream: "/events/stream?" + url.Values{"cluster": {name}}.Encode(),
		PollMs: h.opts.FallbackPoll.Milliseconds(), Body: body,
	})
}

// sourceError answers a page whose data could not be read: 503, and the page polls
// until the hub can answer again.
func (h *handler) sourceError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the browser went away
	}
	h.opts.Logger.Error("dashboard: read hub status", "path", r.URL.Path, "err", err)
	h.render(w, http.StatusServiceUnavailable, "error", pageData{
		Title: "Hub unavailable", PollMs: h.opts.FallbackPoll.Milliseconds(),
		Body: errorBody{
			Heading: "The hub cannot read its status right now",
			Message: err.Error() + ". This page retries by itself.",
		},
	})
}

func (h *handler) renderError(w http.ResponseWriter, status int, heading, msg string) {
	h.render(w, status, "error", pageData{Title: heading, Body: errorBody{Heading: heading, Message: msg}})
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "The dashboard is read-only.")
		return
	}
	h.renderError(w, http.StatusNotFound, "Page not found", "There is no page at "+r.URL.Path+".")
}

func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		h.notFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}

// isNotFound tells whether a Source error means the cluster does not exist.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var er *apiv1.ErrorResponse
	return errors.Is(err, ErrNotFound) || errors.As(err, &er) && er.Code == apiv1.CodeNotFound
}

// overviewData is what the overview's fingerprint covers.
type overviewData struct {
	matrix *apiv1.Matrix
	events *apiv1.EventList
	// held names the active rollout run holding each (cluster, app) it holds.
	held        map[[2]string]string
	fingerprint string
}

func (h *handler) loadOverview(ctx context.Context) (*overviewData, error) {
	m, err := h.src.Matrix(ctx)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	ev, err := h.src.Events(ctx, "", h.opts.EventLimit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	held := map[[2]string]string{}
	if h.rollouts != nil {
		// The marks are an extra: a hub that cannot list its runs still shows the matrix.
		list, err := h.rollouts.Rollouts(ctx, "", true, rolloutLimit)
		switch {
		case err == nil:
			held = heldBy(list)
		case !isNotFound(err) && ctx.Err() == nil:
			h.opts.Logger.Warn("dashboard: list rollouts for the matrix", "err", err)
		}
	}
	return &overviewData{matrix: m, events: ev, held: held, fingerprint: fingerprint(m, ev, heldKey(held))}, nil
}

// clusterData is what a cluster page's fingerprint covers.
type clusterData struct {
	status      *apiv1.ClusterStatus
	events      *apiv1.EventList
	fingerprint string
}

func (h *handler) loadCluster(ctx context.Context, name string) (*clusterData, error) {
	st, err := h.src.ClusterStatus(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("status of cluster %s: %w", name, err)
	}
	ev, err := h.src.Events(ctx, name, h.opts.EventLimit)
	if err != nil {
		return nil, fmt.Errorf("events of cluster %s: %w", name, err)
	}
	return &clusterData{status: st, events: ev, fingerprint: fingerprint(clusterKey(st), ev)}, nil
}
