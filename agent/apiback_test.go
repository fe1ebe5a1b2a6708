package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-gitops/outpost/sync/engine"
)

func TestAPIUnavailable(t *testing.T) {
	cm := schema.GroupResource{Resource: "configmaps"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"connection refused, wrapped by the engine": {&engine.Error{Stage: engine.StageApply, Err: fmt.Errorf("apply ConfigMap/a/b: %w",
			&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})}, true},
		"connection reset":          {fmt.Errorf("patch: %w", syscall.ECONNRESET), true},
		"unexpected EOF":            {fmt.Errorf("list: %w", io.ErrUnexpectedEOF), true},
		"503":                       {apierrors.NewServiceUnavailable("etcd is down"), true},
		"504":                       {apierrors.NewTimeoutError("etcdserver: request timed out", 1), true},
		"500":                       {apierrors.NewInternalError(errors.New("etcdserver: leader changed")), true},
		"502 from a proxy in front": {apierrors.NewGenericServerResponse(http.StatusBadGateway, "patch", cm, "x", "faultproxy: away", 0, false), true},
		"forbidden":                 {apierrors.NewForbidden(cm, "x", errors.New("RBAC")), false},
		"invalid":                   {apierrors.NewBadRequest("spec.replicas: must be a number"), false},
		"namespace not found":       {apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "x"), false},
		"a fence that lapsed":       {fmt.Errorf("apply: %w", errNotLeading), false},
		"no error":                  {nil, false},
		"plain error":               {errors.New("immutable field"), false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := apiUnavailable(tc.err); got != tc.want {
				t.Errorf("apiUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// The waiting apps are retried at once only when a probe succeeds after one failed:
// the return of an apiserver seen away, never a reachable one (the backoff stands).
func TestAPIReturnRetriesOnlyAfterAnOutageWasSeen(t *testing.T) {
	const down = true
	type step struct {
		waiting bool
		down    bool
		retry   bool
	}
	for name, steps := range map[string][]step{
		"outage then return": {{true, down, false}, {true, down, false}, {true, !down, true}, {true, !down, false}},
		"reachable at once":  {{true, !down, false}, {true, !down, false}},
		"nothing waits":      {{false, !down, false}, {false, !down, false}},
		"the waiting apps went away during the outage": {{true, down, false}, {false, !down, false}, {true, !down, false}},
		"a second outage": {{true, down, false}, {true, !down, true}, {true, !down, false}, {true, down, false}, {true, !down, true}},
	} {
		t.Run(name, func(t *testing.T) {
			var a apiReturn
			for i, s := range steps {
				if got := a.observe(s.waiting, s.down); got != s.retry {
					t.Fatalf("step %d (waiting %v, apiserver away %v): retry %v, want %v", i, s.waiting, s.down, got, s.retry)
				}
			}
		})
	}
}

// A probe answered by the apiserver, whatever it says short of a 5xx, means it serves:
// a cluster that does not let the agent read /readyz (403) still gets the early retry.
func TestProbeDown(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"ready":                      {nil, false},
		"connection refused":         {&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		"readyz failing (etcd)":      {apierrors.NewInternalError(errors.New("[-]etcd failed")), true},
		"503 during start-up":        {apierrors.NewServiceUnavailable("starting"), true},
		"readyz forbidden to the SA": {apierrors.NewForbidden(schema.GroupResource{}, "", errors.New("RBAC")), false},
		"readyz unauthorized":        {apierrors.NewUnauthorized("token"), false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := probeDown(tc.err); got != tc.want {
				t.Errorf("probeDown(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
