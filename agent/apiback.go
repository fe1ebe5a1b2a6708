package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// apiProbeTimeout bounds one probe of the apiserver's readiness.
const apiProbeTimeout = 2 * time.Second

// apiUnavailable tells whether a failure looks like the apiserver (or its etcd) not
// answering, which its return repairs: a refused, reset or timed-out connection, the
// apiserver answering 500, 503 or 504, or a proxy or load balancer in front of it
// answering 502.
func apiUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code == http.StatusBadGateway {
		return true
	}
	return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsInternalError(err)
}

// apiReturn decides when the apiserver has come back. While apps wait for a retry of
// a failure that looked like the apiserver being away, the loop probes its readiness
// every second; a probe that succeeds after one that failed is the return, and the
// waiting apps are synced at once instead of at the end of their backoff (which after
// a 30 s outage is 16 s or more). A probe that succeeds first (the failure was a blip,
// or not the apiserver's) changes nothing: the backoff stands, so an app failing for
// another reason is not retried every second.
type apiReturn struct {
	down bool // the last probe failed
}

// observe takes whether apps are waiting and, if so, whether the probe found the
// apiserver away; it returns true when the waiting apps are to be retried now.
func (a *apiReturn) observe(waiting, probeDown bool) bool {
	switch {
	case !waiting:
		a.down = false
		return false
	case probeDown:
		a.down = true
		return false
	case a.down:
		a.down = false
		return true
	}
	return false
}

// probeDown tells whether a readiness probe's error means the apiserver is away: no
// answer, or a 5xx (/readyz answers 500 while etcd is down). An answer such as 403 (a
// cluster that does not let the agent read /readyz) is the apiserver serving.
func probeDown(err error) bool { return err != nil && apiUnavailable(err) }

// retryOnAPIReturn probes the apiserver while failed apps wait for it (see apiReturn)
// and syncs them at once when it answers again.
func (l *loop) retryOnAPIReturn(ctx context.Context) {
	l.mu.Lock()
	var waiting []string
	for name, s := range l.apps {
		if s.retryTimer != nil && s.waitsForAPI {
			waiting = append(waiting, name)
		}
	}
	l.mu.Unlock()
	var probeErr error
	if len(waiting) > 0 {
		pctx, cancel := context.WithTimeout(ctx, apiProbeTimeout)
		probeErr = l.d.kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
	if !l.apiBack.observe(len(waiting) > 0, probeDown(probeErr)) {
		return
	}
	l.log.Info("the apiserver answers again: retrying the failed apps now", "apps", len(waiting))
	p := pending{apps: map[string]bool{}}
	l.mu.Lock()
	for _, name := range waiting {
		s := l.apps[name]
		if s == nil || s.retryTimer == nil {
			continue
		}
		s.retryTimer.Stop()
		s.retryTimer = nil
		p.apps[name] = true
	}
	l.mu.Unlock()
	if len(p.apps) > 0 {
		l.trigger(p)
	}
}
