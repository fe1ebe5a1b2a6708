package benchrun

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/agent"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/localk8s"
)

const (
	// fleetEventPoll is how often the fleet run reads the hub's sync events. The
	// latency figures come from the events' hub receive times, so this bounds the
	// harness's load, not the figures' resolution.
	fleetEventPoll = 100 * time.Millisecond
	// fleetBumpTimeout bounds one bump of the fleet run.
	fleetBumpTimeout = 2 * time.Minute
	// fleetSyncTimeout bounds the agents' first sync of the fleet run.
	fleetSyncTimeout = 5 * time.Minute
)

// fleetLatency is item 1's simulated fleet: N real agents in-process, each registered
// as its own cluster at one in-process hub and each reconciling its own namespace of
// one shared apiserver (the namespaced profile, --namespaces), with one small app
// each. A bump sets every cluster's app to a new version through the hub API, at
// once, and measures until every agent's report reached the hub.
func fleetLatency(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	n := sc.fleetAgents
	res := &Result{
		Name: "commit-to-reported-fleet",
		Description: fmt.Sprintf("One api-mode testbed apiserver shared by %d real agents (in-process, agent.Run), each "+
			"registered at one in-process hub (embedded Git) as its own cluster and limited to its own namespace "+
			"(Config.Namespaces = [its namespace], inventory in it too, drift watch per namespace; admin "+
			"credentials, so the limit is the agent's own, not RBAC's); each cluster "+
			"has one app of one ConfigMap carrying the version in that namespace. Agents poll Git every %s; the "+
			"hub's long-poll notifies them. Per bump (after a random pause up to 250 ms): SetVersion of every "+
			"cluster's app through the hub API, all calls at once (the API has no bulk or selector write; each call "+
			"is one commit, serialized by the hub), then the hub's sync events are read every %s until every "+
			"cluster has the new version Synced. A cluster's latency is from the bump's first API call to the "+
			"hub's receive time of that report (the event's time; same host clock), and, as \"its commit\", from "+
			"the answer to that cluster's own SetVersion call (its commit made) to that report. CPU: this process (hub, agents, "+
			"harness; getrusage) and the apiserver + etcd (/proc), per bump; RSS: this process after the bumps. "+
			"The agents' caches are on tmpfs when "+fleetTmpfs+" is writable (see the notes).",
			n, fleetGitPoll, fleetEventPoll),
		Scale: fmt.Sprintf("%d agents / clusters / namespaces on one apiserver, %d bumps", n, sc.fleetBumps),
	}
	work, err := os.MkdirTemp("", "outpost-bench-fleet-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	compLog := e.componentLogger()

	cluster, err := e.startCluster(ctx, "bench-fleet")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	c, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	names := make([]string, n)
	apps := map[string]string{} // cluster → its app
	for i := range names {
		names[i] = fmt.Sprintf("fleet-%03d", i)
		apps[names[i]] = fmt.Sprintf("app-%03d", i)
	}
	// The namespaced profile writes no cluster-scoped object: the namespaces exist
	// before the agents, as an administrator would create them.
	if err := createNamespaces(ctx, c, names...); err != nil {
		return res, err
	}
	seed := filepath.Join(work, "seed")
	if err := writeFleetSeed(seed, apps); err != nil {
		return res, err
	}
	h, tokens, err := startHubFor(ctx, work, seed, compLog, names)
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()

	cacheBase, onTmpfs := fleetCacheBase(work)
	// Removed after the agents stopped (deferred calls run last first).
	defer func() { _ = os.RemoveAll(cacheBase) }()
	if onTmpfs {
		res.Notes = append(res.Notes, "agent caches (Git clone, exported revisions) on tmpfs ("+fleetTmpfs+"): "+
			"the simulation puts N agents' disks on one host disk, which real agents do not share")
	} else {
		res.Notes = append(res.Notes, "agent caches (Git clone, exported revisions) on the work directory's disk "+
			"("+fleetTmpfs+" not writable): all N agents share this host's disk")
	}
	startAll := time.Now()
	stopAgents := startFleetAgents(ctx, cluster, h, names, tokens, cacheBase, compLog)
	defer stopAgents()
	if err := waitFleetSynced(ctx, h.admin, apps, "1"); err != nil {
		return res, fmt.Errorf("agents did not sync the first version: %w", err)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("first sync of all %d agents (start → all reported Synced, matrix read every second): %s",
		n, time.Since(startAll).Round(100*time.Millisecond)))

	debug.FreeOSMemory()
	if dir := os.Getenv(pprofDirEnv); dir != "" {
		// This process's CPU profile over the bumps (hub and agents): fleet-cpu-<N>.pprof.
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("fleet-cpu-%d.pprof", n)))
		if err != nil {
			return res, fmt.Errorf("CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, fmt.Errorf("CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	pids := cluster.PIDs()
	var all, each, sinceCommit, calls, cpuSelf, cpuAPI []time.Duration
	for b := range sc.fleetBumps {
		if err := sleep(ctx, rand.N(250*time.Millisecond)); err != nil {
			return res, err
		}
		version := fmt.Sprint(b + 2)
		self0, api0 := selfCPU(), pidsCPU(pids)
		all1, each1, since1, calls1, err := fleetBump(ctx, h.admin, apps, version)
		if err != nil {
			return res, fmt.Errorf("version %s: %w", version, err)
		}
		cpuSelf, cpuAPI = append(cpuSelf, selfCPU()-self0), append(cpuAPI, pidsCPU(pids)-api0)
		all, each, calls = append(all, all1), append(each, each1...), append(calls, calls1)
		sinceCommit = append(sinceCommit, since1...)
	}
	res.Figures = append(res.Figures,
		figure(fmt.Sprintf("bump → all %d clusters reported", n), "ms", millis(all)),
		figure("bump → one cluster reported", "ms", millis(each)),
		figure("its commit → one cluster reported", "ms", millis(sinceCommit)),
		figure(fmt.Sprintf("bump → all %d SetVersion calls answered", n), "ms", millis(calls)),
		figure("CPU per bump: this process (hub + agents + harness)", "ms", millis(cpuSelf)),
		figure("CPU per bump: apiserver + etcd", "ms", millis(cpuAPI)),
		figure("this process's RSS after the bumps (hub + agents + harness)", "MB", []float64{selfRSSMB()}),
	)
	if f := res.Figures[1]; f.P99 >= 2000 {
		res.Notes = append(res.Notes, fmt.Sprintf("target missed: per-cluster p99 %.0f ms ≥ 2 s (design brief: commit → applied and reported, p99 < 2 s)", f.P99))
		res.Notes = append(res.Notes, "the profile of this run (set "+pprofDirEnv+" to write fleet-cpu-<N>.pprof) and "+
			"what it shows are in docs/benchmarks.md, Findings")
	}
	res.Notes = append(res.Notes, "Anchors (published, not measured here): Fleet 51–86 s for 50 clusters with its 15 s Git poll; "+
		"Karmada p99 ≈ 1 s.")
	return res, nil
}

// fleetTmpfs is where the fleet's agents keep their caches when it is writable.
const fleetTmpfs = "/dev/shm"

// fleetCacheBase returns a new directory for the agents' caches: on fleetTmpfs if
// possible (onTmpfs), else under work.
func fleetCacheBase(work string) (dir string, onTmpfs bool) {
	if d, err := os.MkdirTemp(fleetTmpfs, "outpost-bench-fleet-"); err == nil {
		return d, true
	}
	return filepath.Join(work, "caches"), false
}

// writeFleetSeed writes a GitOps repository in which each cluster (a key of apps)
// has its own app, of one ConfigMap carrying the version, in the namespace named
// like the cluster, at version "1".
func writeFleetSeed(dir string, apps map[string]string) error {
	for cluster, app := range apps {
		files := map[string]string{
			filepath.Join("apps", app, "app.yaml"):             "namespace: " + cluster + "\n",
			filepath.Join("apps", app, "configmap.yaml"):       versionConfigMap("release"),
			filepath.Join("clusters", cluster, "apps.yaml"):    fmt.Sprintf("apps:\n  - name: %s\n    version: \"1\"\n", app),
			filepath.Join("clusters", cluster, "cluster.yaml"): "labels:\n  env: bench\n",
		}
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("seed %s: %w", p, err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return fmt.Errorf("seed %s: %w", p, err)
			}
		}
	}
	return nil
}

// waitFleetSynced reads the hub's matrix every second until every cluster's app
// (apps: cluster → app) reports version Synced.
func waitFleetSynced(ctx context.Context, admin *hubapi.Client, apps map[string]string, version string) error {
	ctx, cancel := context.WithTimeout(ctx, fleetSyncTimeout)
	defer cancel()
	for {
		m, err := admin.Matrix(ctx)
		missing := len(apps)
		if err == nil {
			for _, row := range m.Clusters {
				if app, ok := apps[row.Cluster]; ok {
					if cell := row.Apps[app]; cell.Version == version && cell.Phase == apiv1.PhaseSynced {
						missing--
					}
				}
			}
			if missing == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d clusters not Synced at version %s within %s (last error: %v)", missing, len(apps), version, fleetSyncTimeout, err)
		case <-time.After(time.Second):
		}
	}
}

// fleetBump sets every cluster's app (apps: cluster → app) to version through the
// hub API, all calls at once, and reads the hub's sync events until each cluster
// reported version Synced. It returns the time until the last cluster's report,
// each cluster's time, and the time until the last call was answered.
func fleetBump(ctx context.Context, admin *hubapi.Client, apps map[string]string, version string) (all time.Duration, each, sinceCommit []time.Duration, calls time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, fleetBumpTimeout)
	defer cancel()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	committed := map[string]time.Time{}
	for cluster, app := range apps {
		g.Go(func() error {
			if _, err := admin.SetVersion(gctx, cluster, app, version, hubapi.WriteOptions{}); err != nil {
				return fmt.Errorf("set %s=%s on %s: %w", app, version, cluster, err)
			}
			mu.Lock()
			calls = max(calls, time.Since(start))
			committed[cluster] = time.Now()
			mu.Unlock()
			return nil
		})
	}
	reported := map[string]time.Time{}
	g.Go(func() error {
		var lastErr error
		for {
			list, err := admin.Events(gctx, hubapi.EventQuery{Type: apiv1.EventSync, Limit: 1000})
			if err == nil {
				for _, ev := range list.Events {
					if ev.Version != version || ev.Phase != apiv1.PhaseSynced || apps[ev.Cluster] != ev.App {
						continue
					}
					if t, ok := reported[ev.Cluster]; !ok || ev.Time.Before(t) {
						reported[ev.Cluster] = ev.Time
					}
				}
				if len(reported) == len(apps) {
					return nil
				}
			} else {
				lastErr = err
			}
			select {
			case <-gctx.Done():
				return fmt.Errorf("%d of %d clusters reported %s Synced within %s (last error: %v)", len(reported), len(apps), version, fleetBumpTimeout, lastErr)
			case <-time.After(fleetEventPoll):
			}
		}
	})
	if err := g.Wait(); err != nil {
		return 0, nil, nil, 0, err
	}
	for cluster, t := range reported {
		d := t.Sub(start)
		each = append(each, d)
		all = max(all, d)
		// The call returns after the commit; the report may come first (by less than the
		// answer's trip): then it counts as 0.
		sinceCommit = append(sinceCommit, max(0, t.Sub(committed[cluster])))
	}
	return all, each, sinceCommit, calls, nil
}

// selfCPU is this process's CPU time so far (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidsCPU is the CPU time so far of the processes pids (user + system, from /proc).
func pidsCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		d, _ := procCPU(pid)
		total += d
	}
	return total
}

// selfRSSMB is this process's resident set, in MB.
func selfRSSMB() float64 { return procRSSMB(os.Getpid()) }

// startFleetAgents starts one agent per name against hub, each confined to the
// namespace named like its cluster (the fleet measurements' layout), and returns
// the function that stops them all together.
func startFleetAgents(ctx context.Context, cluster *localk8s.Cluster, h *benchHub, names, tokens []string,
	cacheBase string, log *slog.Logger) (stop func()) {
	agents := make([]*component, len(names))
	stop = func() {
		// Cancel every agent first, so that they shut down together.
		for _, a := range agents {
			if a != nil {
				a.cancel()
			}
		}
		for _, a := range agents {
			if a != nil {
				_ = a.stop()
			}
		}
	}
	for i, name := range names {
		agents[i] = startAgent(ctx, cluster, name, h.url, h.url, tokens[i], filepath.Join(cacheBase, "cache-"+name), log,
			func(cfg *agent.Config) {
				cfg.GitPollInterval = fleetGitPoll
				cfg.Namespaces = []string{name}
				cfg.InventoryNamespace = name
			})
	}
	return stop
}
