package benchrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/outpost-gitops/outpost/agent"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/localk8s"
)

const (
	// idleBucket is the length of one sample of the idle agent's requests.
	idleBucket = 10 * time.Second
	// idleSettle is how long the agent is left alone after its first sync before
	// counting starts.
	idleSettle = 5 * time.Second
)

// agentIdle counts the requests a real agent sends to its apiserver while nothing
// changes: no commit, no edit, after its first sync of every app.
func agentIdle(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "agent-idle",
		Description: fmt.Sprintf("A real agent (in-process, with the hub, Git polled every %s) on an api-mode "+
			"testbed cluster with N apps, after all are Synced and %s of quiet: its requests to the apiserver "+
			"counted client-side (localk8s.Requests on its rest.Config; a watch counts once, when opened) in "+
			"buckets of %s, scaled to per minute. Compare with noop-cost's flux-style cycle (one GET and one "+
			"dry-run per object per interval).", fleetGitPoll, idleSettle, idleBucket),
		Scale: fmt.Sprintf("%d apps × %d ConfigMaps, %d buckets", sc.noopApps, sc.noopObjectsPerApp, sc.idleBuckets),
	}
	work, err := os.MkdirTemp("", "outpost-bench-idle-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	compLog := e.componentLogger()

	cluster, err := e.startCluster(ctx, "bench-idle")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	const name = "bench-idle"
	apps := map[string]map[string]string{}
	for i := range sc.noopApps {
		app := fmt.Sprintf("app-%03d", i)
		files := map[string]string{}
		for k := range sc.noopObjectsPerApp {
			files[fmt.Sprintf("cm-%d.yaml", k)] = versionConfigMap(fmt.Sprintf("cm-%d", k))
		}
		apps[app] = namespacedApp(app, "", files)
	}
	seed := filepath.Join(work, "seed")
	if err := writeSeed(seed, []string{name}, apps); err != nil {
		return res, err
	}
	h, err := startHub(ctx, work, seed, compLog)
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()
	token, err := h.register(ctx, work, name)
	if err != nil {
		return res, err
	}
	counted := cluster.RESTConfig()
	req := &localk8s.Requests{}
	counted.Wrap(req.Wrap)
	a := startAgent(ctx, cluster, name, h.url, h.url, token, filepath.Join(work, "cache"), compLog, func(c *agent.Config) {
		c.RESTConfig = counted
		c.GitPollInterval = fleetGitPoll
	})
	defer func() { _ = a.stop() }()
	allSynced := func(st *apiv1.ClusterStatus) bool {
		for app := range apps {
			if a, ok := appState(st, app); !ok || a.Version != "1" || a.Phase != apiv1.PhaseSynced {
				return false
			}
		}
		return true
	}
	if _, err := waitHub(ctx, h.admin, name, 250*time.Millisecond, 3*time.Minute, allSynced); err != nil {
		return res, fmt.Errorf("agent did not sync every app: %w", err)
	}
	// The first sync's count shows the recorder sees the agent's requests at all.
	w0, d0, r0 := req.Counts()
	res.Notes = append(res.Notes, fmt.Sprintf("first sync of every app (for scale): %d reads, %d writes, %d dry-runs", r0, w0, d0),
		"the agent's full resync (Interval, default 5 min, jittered) is not inside the counted window")
	if err := sleep(ctx, idleSettle); err != nil {
		return res, err
	}
	perMinute := float64(time.Minute) / float64(idleBucket)
	var reads, writes, dryRuns []float64
	for range sc.idleBuckets {
		req.Reset()
		if err := sleep(ctx, idleBucket); err != nil {
			return res, err
		}
		w, d, r := req.Counts()
		reads, writes, dryRuns = append(reads, float64(r)*perMinute), append(writes, float64(w)*perMinute), append(dryRuns, float64(d)*perMinute)
	}
	res.Figures = append(res.Figures,
		figure("idle agent reads", "requests/min", reads),
		figure("idle agent writes", "requests/min", writes),
		figure("idle agent dry-runs", "requests/min", dryRuns),
	)
	if w, d := res.Figures[1].Max, res.Figures[2].Max; w != 0 || d != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("target missed: the idle agent wrote (max %.0f/min) or dry-ran (max %.0f/min)", w, d))
	}
	return res, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
