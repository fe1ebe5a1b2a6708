package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// fingerprint hashes the JSON of a page's data: equal data, equal fingerprint.
func fingerprint(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		// The api/v1 types always encode; an error here would be a bug, and the
		// fingerprint then only covers the parts before it.
		if err := enc.Encode(p); err != nil {
			fmt.Fprintf(h, "!%v", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// clusterKey is the part of a cluster status that a cluster page's fingerprint covers:
// all of it but the times every heartbeat and periodic resync moves, with the last
// report kept to the minute (the page shows it, and whether it is stale).
func clusterKey(st *apiv1.ClusterStatus) *apiv1.ClusterStatus {
	k := *st
	k.Cluster.LastReportAt = k.Cluster.LastReportAt.Truncate(time.Minute)
	k.Apps = make([]apiv1.AppState, len(st.Apps))
	for i, a := range st.Apps {
		a.ReceivedAt = time.Time{}
		k.Apps[i] = a
	}
	return &k
}

// streamTarget is the page an event stream is about: the overview (zero), a
// cluster, a rollout run, or the list of runs.
type streamTarget struct {
	cluster string
	rollout string
	// rollouts is the list of runs.
	rollouts bool
}

// what names the target in logs.
func (t streamTarget) what() string {
	switch {
	case t.cluster != "":
		return "cluster " + t.cluster
	case t.rollout != "":
		return "rollout " + t.rollout
	case t.rollouts:
		return "rollouts"
	}
	return "overview"
}

// parseStreamTarget reads the stream's page from its query: at most one of
// cluster=NAME, rollout=ID and rollouts=all. The message of an error names the
// parameter.
func (h *handler) parseStreamTarget(q url.Values) (streamTarget, error) {
	t := streamTarget{cluster: q.Get("cluster"), rollout: q.Get("rollout")}
	n := 0
	if t.cluster != "" {
		n++
		if apiv1.ValidateName("cluster", t.cluster) != nil {
			return t, errors.New("cluster: not a cluster name")
		}
	}
	if t.rollout != "" {
		n++
		if !apiv1.IsRolloutID(t.rollout) {
			return t, errors.New("rollout: not a rollout ID")
		}
	}
	if v := q.Get("rollouts"); v != "" {
		n++
		if v != "all" {
			return t, errors.New("rollouts: the only value is all")
		}
		t.rollouts = true
	}
	if n > 1 {
		return t, errors.New("cluster, rollout, rollouts: at most one of them")
	}
	return t, nil
}

// stream serves /events/stream[?cluster=NAME|rollout=ID|rollouts=all][&since=FINGERPRINT]:
// Server-Sent Events telling a page that its data changed. It polls the Source every PollInterval and
// sends
//
//	id: <fingerprint>
//	event: changed
//	data: <fingerprint>
//
// whenever the fingerprint differs from the last one sent, or at first from the
// Last-Event-ID header (sent by a reconnecting EventSource) or else the since
// parameter (the fingerprint the page was rendered with). Comments keep an idle stream
// open; the stream ends after StreamMaxAge and the browser reconnects.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, err := h.parseStreamTarget(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if (target.rollout != "" || target.rollouts) && h.rollouts == nil {
		http.Error(w, "this dashboard has no rollout pages", http.StatusNotFound)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("since")
	}
	ctx := r.Context()
	fp, err := h.currentFingerprint(ctx, target)
	switch {
	case isNotFound(err):
		http.Error(w, "no such "+strings.Fields(target.what())[0], http.StatusNotFound)
		return
	case err != nil:
		if ctx.Err() == nil {
			h.opts.Logger.Error("dashboard: event stream: read hub status", "page", target.what(), "err", err)
		}
		http.Error(w, "the hub cannot read its status right now", http.StatusServiceUnavailable)
		return
	}

	rc := http.NewResponseController(w)
	// No read deadline: when the server's ReadTimeout passed, net/http would cancel the
	// request's context and end the stream long before StreamMaxAge.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.opts.Logger.Debug("dashboard: event stream: clear the read deadline", "err", err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	s := &sseWriter{w: w, rc: rc, timeout: h.opts.KeepAlive + 10*time.Second}
	// retry: how long the browser waits before reconnecting.
	if err := s.send(fmt.Sprintf("retry: %d\n\n", max(h.opts.PollInterval.Milliseconds(), 1000))); err != nil {
		return
	}
	poll := time.NewTicker(h.opts.PollInterval)
	defer poll.Stop()
	keepAlive := time.NewTicker(h.opts.KeepAlive)
	defer keepAlive.Stop()
	end := time.NewTimer(h.opts.StreamMaxAge)
	defer end.Stop()
	for {
		if fp != "" && fp != last {
			if err := s.send("id: " + fp + "\nevent: changed\ndata: " + fp + "\n\n"); err != nil {
				return
			}
			last = fp
			keepAlive.Reset(h.opts.KeepAlive)
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-keepAlive.C:
			if err := s.send(": keep-alive\n\n"); err != nil {
				return
			}
		case <-poll.C:
			next, err := h.currentFingerprint(ctx, target)
			switch {
			case err == nil:
				fp = next
			case ctx.Err() != nil:
				return
			case isNotFound(err):
				// The cluster or run was removed: tell the page, which then shows that.
				fp = "gone"
			default:
				// Keep the stream and the last fingerprint: the next poll may succeed.
				h.opts.Logger.Warn("dashboard: event stream: read hub status", "page", target.what(), "err", err)
			}
		}
	}
}

// currentFingerprint reads the data of the page a stream is about and returns its
// fingerprint.
func (h *handler) currentFingerprint(ctx context.Context, t streamTarget) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.ReadTimeout)
	defer cancel()
	switch {
	case t.rollout != "":
		run, err := h.rollouts.Rollout(ctx, t.rollout)
		if err != nil {
			return "", err
		}
		return fingerprint(rolloutKey(run)), nil
	case t.rollouts:
		list, err := h.rollouts.Rollouts(ctx, "", false, rolloutLimit)
		if err != nil {
			return "", err
		}
		return fingerprint(rolloutListKey(list)), nil
	case t.cluster == "":
		d, err := h.loadOverview(ctx)
		if err != nil {
			return "", err
		}
		return d.fingerprint, nil
	}
	d, err := h.loadCluster(ctx, t.cluster)
	if err != nil {
		return "", err
	}
	return d.fingerprint, nil
}

// sseWriter writes events and flushes each, extending the connection's write deadline
// so a server-wide WriteTimeout does not cut a long-lived stream.
type sseWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *sseWriter) send(text string) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := io.WriteString(s.w, text); err != nil {
		return err
	}
	return s.rc.Flush()
}
