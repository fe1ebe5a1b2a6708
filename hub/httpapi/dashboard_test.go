package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// TestDashboardMountAndReadModel mounts a dashboard built from the API's read model:
// it takes an admin token (basic-auth password or bearer), never an agent token, and
// reads the same data as the REST API.
func TestDashboardMountAndReadModel(t *testing.T) {
	h := newTestHub(t, t.TempDir())
	tok := h.register(t, "prod-eu")
	var src ReadModel
	api, err := New(Config{Store: h.store, Git: h.git, Notifier: h.notifier, Admins: h.api.cfg.Admins,
		Dashboard: func(rm ReadModel) (http.Handler, error) {
			src = rm
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m, err := rm.Matrix(r.Context())
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				fmt.Fprintf(w, "page %s: %d clusters at %s", r.URL.Path, len(m.Clusters), m.Revision)
			}), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	get := func(path string, auth func(*http.Request)) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	basic := func(pw string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth("me", pw) } }
	if r := get("/clusters/prod-eu", basic(janeToken)); r.StatusCode != http.StatusOK {
		t.Errorf("admin via basic auth: %d", r.StatusCode)
	}
	if r := get("/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ciToken) }); r.StatusCode != http.StatusOK {
		t.Errorf("admin via bearer: %d", r.StatusCode)
	}
	if r := get("/", func(*http.Request) {}); r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no token: %d, challenge %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := get("/", basic(tok)); r.StatusCode != http.StatusForbidden {
		t.Errorf("agent token: %d", r.StatusCode)
	}

	ctx := context.Background()
	cs, err := src.ClusterStatus(ctx, "prod-eu")
	if err != nil || cs.Cluster.Name != "prod-eu" || len(cs.Apps) != 2 {
		t.Errorf("ClusterStatus = %+v, %v", cs, err)
	}
	_, err = src.ClusterStatus(ctx, "nope")
	var er *apiv1.ErrorResponse
	if !errors.As(err, &er) || er.Code != apiv1.CodeNotFound {
		t.Errorf("ClusterStatus(nope) = %v, want a not_found ErrorResponse", err)
	}
	_, err = src.ClusterStatus(ctx, "../x")
	if err == nil {
		t.Errorf("ClusterStatus(../x) = %v, want an error", err)
	}
	if evs, err := src.Events(ctx, "", 5); err != nil || evs.Events == nil {
		t.Errorf("Events = %+v, %v", evs, err)
	}
}
