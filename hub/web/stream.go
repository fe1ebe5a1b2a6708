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

// stream serves /events/stream[?cluster=NAME][&since=FINGERPRINT]: Server-Sent Events
// telling a page that its data changed. It polls the Source every PollInterval and
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
	cluster := q.Get("cluster")
	if cluster != "" && apiv1.ValidateName("cluster", cluster) != nil {
		http.Error(w, "cluster: not a cluster name", http.StatusBadRequest)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("since")
	}
	ctx := r.Context()
	fp, err := h.currentFingerprint(ctx, cluster)
	switch {
	case isNotFound(err):
		http.Error(w, "no such cluster", http.StatusNotFound)
		return
	case err != nil:
		if ctx.Err() == nil {
			h.opts.Logger.Error("dashboard: event stream: read hub status", "cluster", cluster, "err", err)
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
			next, err := h.currentFingerprint(ctx, cluster)
			switch {
			case err == nil:
				fp = next
			case ctx.Err() != nil:
				return
			case isNotFound(err):
				// The cluster was removed: tell the page, which then shows that.
				fp = "gone"
			default:
				// Keep the stream and the last fingerprint: the next poll may succeed.
				h.opts.Logger.Warn("dashboard: event stream: read hub status", "cluster", cluster, "err", err)
			}
		}
	}
}

// currentFingerprint reads the data of the page a stream is about and returns its
// fingerprint.
func (h *handler) currentFingerprint(ctx context.Context, cluster string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.ReadTimeout)
	defer cancel()
	if cluster == "" {
		d, err := h.loadOverview(ctx)
		if err != nil {
			return "", err
		}
		return d.fingerprint, nil
	}
	d, err := h.loadCluster(ctx, cluster)
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
