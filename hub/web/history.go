package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// HistorySource is what the history and commit pages read: a cluster's commits
// (GET /api/v1/clusters/{cluster}/history) and a commit's rendered effect on every
// cluster (GET /api/v1/diff). A Source that implements it gets those pages.
type HistorySource interface {
	// History returns at most limit commits that changed the cluster, newest first.
	History(ctx context.Context, cluster string, limit int) (*apiv1.HistoryList, error)
	// Diff renders what head changes relative to base (empty: head's parent).
	Diff(ctx context.Context, base, head string) (*fleetdiff.Result, error)
}

// historyLimit is how many commits the history page lists.
const historyLimit = 50

// historyBody is the data of a cluster's history page.
type historyBody struct {
	Cluster string
	Entries []apiv1.HistoryEntry
}

// commitBody is the data of a commit's page: what it changed on each cluster.
type commitBody struct {
	Commit string
	// Cluster, when set, is the cluster the page came from; its diff is shown first.
	Cluster  string
	Clusters []fleetdiff.ClusterDiff
	Errors   []fleetdiff.Error
	Counts   fleetdiff.Counts
}

var revisionPattern = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

func (h *handler) historySource(w http.ResponseWriter, r *http.Request) (HistorySource, bool) {
	hs, ok := h.src.(HistorySource)
	if !ok {
		h.notFound(w, r)
	}
	return hs, ok
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historySource(w, r)
	if !ok {
		return
	}
	name := r.PathValue("cluster")
	if apiv1.ValidateName("cluster", name) != nil {
		h.notFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	list, err := hs.History(ctx, name, historyLimit)
	if isNotFound(err) {
		h.renderError(w, http.StatusNotFound, "No such cluster",
			fmt.Sprintf("The hub has no cluster named %q. It may have been removed.", name))
		return
	}
	if err != nil {
		h.sourceError(w, r, fmt.Errorf("history of cluster %s: %w", name, err))
		return
	}
	h.render(w, http.StatusOK, "history", pageData{
		Title: "History of " + name, Section: "cluster", Body: historyBody{Cluster: name, Entries: list.Entries},
	})
}

func (h *handler) commit(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.historySource(w, r)
	if !ok {
		return
	}
	rev := r.PathValue("rev")
	if !revisionPattern.MatchString(rev) {
		h.notFound(w, r)
		return
	}
	from := r.URL.Query().Get("cluster")
	if from != "" && apiv1.ValidateName("cluster", from) != nil {
		from = ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	d, err := hs.Diff(ctx, "", rev)
	if isNotFound(err) {
		h.renderError(w, http.StatusNotFound, "No such commit", "The hub's repository has no commit "+rev+".")
		return
	}
	if err != nil {
		h.sourceError(w, r, fmt.Errorf("diff of %s: %w", rev, err))
		return
	}
	body := commitBody{Commit: rev, Cluster: from, Errors: d.Errors, Counts: d.Counts}
	for _, c := range d.Clusters { // the cluster the reader came from first
		if c.Cluster == from {
			body.Clusters = append(body.Clusters, c)
		}
	}
	for _, c := range d.Clusters {
		if c.Cluster != from {
			body.Clusters = append(body.Clusters, c)
		}
	}
	h.render(w, http.StatusOK, "commit", pageData{Title: "Commit " + shortRev(rev), Section: "cluster", Body: body})
}

// diffLineClass gives a unified diff's line its colour class (d-add, d-del, d-hunk,
// d-file; none for context), by fleetdiff's classification.
func diffLineClass(l string) string {
	if k := fleetdiff.KindOf(l); k != fleetdiff.LineContext {
		return "d-" + string(k)
	}
	return ""
}

// diffLines splits a unified diff into its lines.
func diffLines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
