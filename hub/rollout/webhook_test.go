package rollout

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestWebhookPostsSignedNotifications(t *testing.T) {
	got := make(chan WebhookPayload, 1)
	fails := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(SignatureHeader) != Sign([]byte("s3cret"), body) {
			t.Errorf("signature %q does not match the body", r.Header.Get(SignatureHeader))
		}
		if fails > 0 { // the first attempt fails: the delivery is retried
			fails--
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var p WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Error(err)
		}
		got <- p
	}))
	defer srv.Close()
	w, err := NewWebhook(srv.URL, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	w.Notify(ctx, &apiv1.Rollout{ID: "web-1", App: "web", State: apiv1.RolloutRolledBack}, "RolledBack: wave eu failed")
	select {
	case p := <-got:
		if p.Event != "rollout" || p.Rollout.ID != "web-1" || !strings.Contains(p.What, "wave eu failed") {
			t.Errorf("payload %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification delivered")
	}
}

func TestNewWebhookRefusesBadURLs(t *testing.T) {
	for name, u := range map[string]string{"no scheme": "example.com/hook", "ftp": "ftp://example.com/", "no host": "https://", "junk": "::"} {
		if _, err := NewWebhook(u, nil, nil); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
