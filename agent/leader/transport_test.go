package leader

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// A write after the fence lapsed (the replica was paused beyond its Lease) is refused
// by the transport before it reaches the server; reads go on, and writes resume after
// a renewal. The fence is the Lease's renewal clock, as in the agent.
func TestTransportRefusesWritesOnceTheFenceLapsed(t *testing.T) {
	var got atomic.Int32 // requests the server received
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		methods = append(methods, r.Method)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	now := time.Unix(1000, 0)
	lock := &renewClock{Interface: &fakeLock{id: "agent-a"}, now: func() time.Time { return now }}
	fence := lock.fence("ns/outpost-agent", 10*time.Second)
	client := &http.Client{Transport: Transport(http.DefaultTransport, fence)}
	send := func(method string) error {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/api/v1/namespaces/ns/configmaps/cm", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}

	// Never acquired: no write.
	if err := send(http.MethodPatch); err == nil {
		t.Fatal("a write was sent before the Lease was ever acquired")
	}
	if err := lock.Create(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet} {
		if err := send(m); err != nil {
			t.Fatalf("%s while leading: %v", m, err)
		}
	}
	if n := got.Load(); n != 5 {
		t.Fatalf("server received %d requests while leading, want 5", n)
	}

	now = now.Add(30 * time.Second) // SIGSTOP beyond the Lease, then SIGCONT
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		err := send(m)
		var lost *LostError
		if !errors.As(err, &lost) {
			t.Fatalf("%s after the pause: %v, want a *LostError", m, err)
		}
	}
	if n := got.Load(); n != 5 {
		t.Fatalf("server received %d requests, want still 5: a write after the pause reached it (%v)", n, methods)
	}
	if err := send(http.MethodGet); err != nil {
		t.Fatalf("a read after the pause: %v", err)
	}

	if err := lock.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a"}); err != nil {
		t.Fatal(err)
	}
	if err := send(http.MethodPatch); err != nil {
		t.Fatalf("a write after a renewal: %v", err)
	}
	if n := got.Load(); n != 7 {
		t.Fatalf("server received %d requests, want 7", n)
	}
}
