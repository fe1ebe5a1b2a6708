package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

// syncedBuffer is the demo's output, read while it runs.
type syncedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoSyncsBothClustersAndCleansUp runs `make demo`'s code: it waits until the
// dashboard shows both clusters with every example app synced and healthy, stops the
// demo as Ctrl-C would, and checks that no process and no file is left behind.
func TestDemoSyncsBothClustersAndCleansUp(t *testing.T) {
	state := filepath.Join(t.TempDir(), "demo")
	out := &syncedBuffer{}
	ready := make(chan Running, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- Run(ctx, Config{
			StateDir: state, ExamplesDir: filepath.Join("..", "..", "..", "examples"), ListenAddr: "127.0.0.1:0",
			Out: out, Ready: func(r Running) { ready <- r },
		})
	}()
	var r Running
	select {
	case r = <-ready:
	case err := <-done:
		t.Fatalf("demo ended before it was ready: %v\n%s", err, out)
	case <-time.After(3 * time.Minute):
		t.Fatalf("demo not ready within 3 minutes\n%s", out)
	}
	client, err := hubapi.New(r.HubURL, r.AdminToken, hubapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !allSynced(t, client, "dev", "prod") {
		if time.Now().After(deadline) {
			t.Fatalf("not every app synced and healthy within 3 minutes; demo output:\n%s\nlogs in %s", out, r.StateDir)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("both clusters synced and healthy %s after start", time.Since(start).Round(time.Millisecond))
	page := get(t, r.HubURL+"/")
	for _, want := range []string{">dev<", ">prod<", "1.27.3", "1.26.2", "Synced", "Healthy"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	if !strings.Contains(out.String(), "Dashboard:  "+r.HubURL) || !strings.Contains(out.String(), "bin/outpost set web") {
		t.Errorf("banner lacks the dashboard URL or the commands to try:\n%s", out)
	}
	// The demo then rolls cache 7.4.2 out across dev and prod, dev first.
	for {
		list, err := client.ListRollouts(t.Context(), "cache", false)
		if err == nil && len(list.Rollouts) == 1 && list.Rollouts[0].State == apiv1.RolloutSucceeded {
			run := list.Rollouts[0]
			if len(run.Waves) != 2 || run.Waves[1].StartedAt.Before(run.Waves[0].DoneAt) {
				t.Errorf("waves %+v: prod must start after dev is done", run.Waves)
			}
			break
		}
		if time.Now().After(deadline.Add(3 * time.Minute)) {
			t.Fatalf("the demo's rollout did not succeed: %+v, %v\n%s", list, err, out)
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(out.String(), "/rollouts/cache-") || !strings.Contains(out.String(), "Succeeded") {
		t.Errorf("the demo output does not show the rollout:\n%s", out)
	}
	for _, c := range []string{"dev", "prod"} {
		st, err := client.ClusterStatus(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range st.Apps {
			if a.App == "cache" && a.Version != "7.4.2" {
				t.Errorf("%s runs cache %s after the rollout, want 7.4.2", c, a.Version)
			}
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop within a minute")
	}
	for _, pid := range r.PIDs {
		if testenv.Alive(pid) {
			t.Errorf("pid %d still running after the demo stopped", pid)
		}
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s left behind", state)
	}
}

func allSynced(t *testing.T, c *hubapi.Client, clusters ...string) bool {
	t.Helper()
	for _, name := range clusters {
		st, err := c.ClusterStatus(t.Context(), name)
		if err != nil || len(st.Apps) == 0 {
			return false
		}
		for _, a := range st.Apps {
			if a.Phase != apiv1.PhaseSynced || a.Health.Status != apiv1.HealthCurrent || a.Version != a.DesiredVersion {
				return false
			}
		}
	}
	return true
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
