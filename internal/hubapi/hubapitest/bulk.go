package hubapitest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// serveBulk answers POST /api/v1/apps/{app}/bulk as the hub does, on the fake
// desired state: one revision for the whole write, all or nothing.
func (h *Hub) serveBulk(w http.ResponseWriter, r *http.Request) {
	var req apiv1.BulkRequest
	if err := apiv1.Decode(r.Body, apiv1.MaxRequestBytes, &req); err != nil {
		writeError(w, decodeErr(err))
		return
	}
	if req.IfMatch != "" {
		r.Header.Set("If-Match", req.IfMatch)
	}
	h.serveWrite(w, r, func(author string) (any, error) {
		return h.bulk(r.PathValue("app"), req, author)
	})
}

// bulk applies req under mu.
func (h *Hub) bulk(app string, req apiv1.BulkRequest, author string) (*apiv1.BulkResult, error) {
	picked := map[string]bool{}
	for _, name := range req.Clusters {
		if _, err := h.cluster(name); err != nil {
			return nil, err
		}
		picked[name] = true
	}
	if req.Selector != "" {
		sel, err := labels.Parse(req.Selector)
		if err != nil {
			return nil, &apiv1.ErrorResponse{Code: apiv1.CodeInvalid, Field: "selector", Message: err.Error()}
		}
		for name, c := range h.clusters {
			if sel.Matches(labels.Set(c.info.Labels)) {
				picked[name] = true
			}
		}
	}
	if req.VarsFrom != "" {
		src, err := h.cluster(req.VarsFrom)
		if err != nil {
			return nil, err
		}
		if _, ok := src.desired[app]; !ok {
			return nil, notFound("app", "app %q is not set on cluster %q (to copy its vars)", app, req.VarsFrom)
		}
	}
	if len(picked) == 0 {
		return nil, &apiv1.ErrorResponse{Code: apiv1.CodeInvalid, Field: "selector", Message: fmt.Sprintf("%q matches no cluster", req.Selector)}
	}
	names := make([]string, 0, len(picked))
	for n := range picked {
		names = append(names, n)
	}
	slices.Sort(names)
	out := &apiv1.BulkResult{App: app, Action: req.Action, DryRun: req.DryRun, Changes: []apiv1.BulkChange{}}
	for _, name := range names {
		c := h.clusters[name]
		cur, listed := c.desired[app]
		ch := apiv1.BulkChange{Cluster: name, PreviousVersion: cur}
		switch req.Action {
		case apiv1.BulkSet:
			ch.Version = req.Version
		case apiv1.BulkUnset:
			if !listed {
				return nil, notFound("app", "app %q is not set on cluster %q", app, name)
			}
		case apiv1.BulkRollback:
			if !listed {
				return nil, notFound("app", "app %q is not set on cluster %q", app, name)
			}
			for _, cm := range c.history {
				if cm.app == app && cm.entry.Before != "" && cm.entry.Before != cur {
					ch.Version = cm.entry.Before
					break
				}
			}
			if ch.Version == "" {
				return nil, notFound("app", "no previous version of app %q on cluster %q", app, name)
			}
		}
		ch.Changed = !listed || ch.Version != cur
		out.Changes = append(out.Changes, ch)
	}
	var lines []string
	for _, ch := range out.Changes {
		if ch.Changed {
			lines = append(lines, fmt.Sprintf("%s: %s -> %s", ch.Cluster, ch.PreviousVersion, ch.Version))
		}
	}
	what := fmt.Sprintf("%s %s", req.Action, app)
	if req.Action == apiv1.BulkSet {
		what += "=" + req.Version
	}
	n := fmt.Sprintf("%d clusters", len(lines))
	if len(lines) == 1 {
		n = "1 cluster"
	}
	out.Message = fmt.Sprintf("%s on %s\n\n%s", what, n, strings.Join(lines, "\n"))
	out.Revision = h.revision
	if req.DryRun || len(lines) == 0 {
		return out, nil
	}
	for _, ch := range out.Changes {
		if !ch.Changed {
			continue
		}
		c := h.clusters[ch.Cluster]
		if ch.Version == "" {
			delete(c.desired, app)
		} else {
			c.desired[app] = ch.Version
		}
	}
	// One commit for all: every changed cluster's history gets the same revision.
	h.revision = h.nextRevision()
	for _, ch := range out.Changes {
		if ch.Changed {
			c := h.clusters[ch.Cluster]
			c.history = append([]commit{{app: app, entry: apiv1.HistoryEntry{
				Commit: h.revision, Author: author, Email: author + "@example.com", Time: h.now().UTC(),
				Message: out.Message, Before: ch.PreviousVersion, After: ch.Version,
			}}}, c.history...)
		}
	}
	out.Committed, out.Revision = true, h.revision
	return out, nil
}
