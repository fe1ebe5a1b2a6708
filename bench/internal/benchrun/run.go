package benchrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// Config configures a run.
type Config struct {
	// Quick selects the small scale (make bench-quick).
	Quick bool
	// Only restricts the run to these measurements by name; empty runs all.
	Only []string
	// OutDir receives <date>.json and <date>.md; empty writes nothing.
	OutDir string
	// BinDir holds the testbed binaries; empty means localk8s.DefaultBinDir.
	BinDir string
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// Report is the outcome of a run, as written to <date>.json.
type Report struct {
	// Mode is "quick" or "full".
	Mode string `json:"mode"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// Host, CPUs, OS and GoVersion describe the machine.
	Host      string `json:"host"`
	CPUs      int    `json:"cpus"`
	OS        string `json:"os"`
	GoVersion string `json:"goVersion"`
	// KubernetesVersion is the testbed's apiserver version.
	KubernetesVersion string `json:"kubernetesVersion"`
	// Results has one entry per measurement run.
	Results []Result `json:"results"`
}

// scale holds the sizes of one mode, all in one place.
type scale struct {
	// noopApps × noopObjectsPerApp objects, noopCycles counted cycles (noop-cost, agent-idle).
	noopApps, noopObjectsPerApp, noopCycles int
	// throughputObjects ConfigMaps per apply, throughputReps repetitions.
	throughputObjects, throughputReps int
	// mixed is apply-throughput's mixed workload (same repetitions).
	mixed mixedSet
	// gitCommits of history over gitClusters clusters' files, gitReps new commits.
	gitCommits, gitClusters, gitReps int
	// e2eClusters clusters; e2eBumps bumps with the long-poll, e2eIntervalBumps without.
	e2eClusters, e2eBumps, e2eIntervalBumps int
	// helmClusters clusters, helmBumps bumps of each of the plain and the Helm app
	// (helm-commit-to-reported).
	helmClusters, helmBumps int
	// fleetAgents agents sharing one apiserver, fleetBumps bumps (commit-to-reported-fleet).
	fleetAgents, fleetBumps int
	// driftEdits edits per drift policy.
	driftEdits int
	// idleBuckets 10 s buckets of the idle agent's requests.
	idleBuckets int
	// hubClusters are the fleet sizes of hub-capacity (one run each): simulated
	// clusters measured for hubWindow.
	hubClusters []int
	hubWindow   time.Duration
	// footprintApps are the app counts of agent-footprint, footprintSettle the quiet
	// time after the first sync, footprintIdle the idle window measured;
	// footprintCombined also measures `outpost agent` of the single binary.
	footprintApps                  []int
	footprintSettle, footprintIdle time.Duration
	footprintCombined              bool
	// diffClusters × diffApps is the fleet-diff repository, diffed diffReps times.
	diffClusters, diffApps, diffReps int
	// soakApps × soakObjectsPerApp objects for agent-scale-soak: first sync within
	// soakSyncTimeout, requests counted for soakQuiet, then soaked for soakDuration with
	// one edit per second, sampled every soakSample.
	soakApps, soakObjectsPerApp int
	soakSyncTimeout, soakQuiet  time.Duration
	soakDuration, soakSample    time.Duration
	// soakAfterResync starts the soak after the agent's first full resync.
	soakAfterResync bool
	// changeClusters simulated clusters receive changeBumps fleet-wide bulk changes
	// (hub-fleet-change).
	changeClusters, changeBumps int
}

func scaleFor(quick bool) scale {
	if quick {
		return scale{
			noopApps: 20, noopObjectsPerApp: 10, noopCycles: 5,
			throughputObjects: 200, throughputReps: 3,
			mixed:      mixedSet{deployments: 10, services: 10, configMaps: 20, customResources: 20},
			gitCommits: 1000, gitClusters: 100, gitReps: 5,
			e2eClusters: 3, e2eBumps: 20, e2eIntervalBumps: 4,
			helmClusters: 2, helmBumps: 10,
			fleetAgents: 10, fleetBumps: 10,
			driftEdits: 20, idleBuckets: 3,
			hubClusters: []int{1000}, hubWindow: 30 * time.Second,
			footprintApps: []int{10}, footprintSettle: 2 * time.Second, footprintIdle: 5 * time.Second,
			diffClusters: 20, diffApps: 5, diffReps: 2,
			soakApps: 100, soakObjectsPerApp: 10, soakSyncTimeout: 5 * time.Minute,
			soakQuiet: 20 * time.Second, soakDuration: time.Minute, soakSample: 2 * time.Second,
			changeClusters: 1000, changeBumps: 3,
		}
	}
	return scale{
		noopApps: 100, noopObjectsPerApp: 10, noopCycles: 10,
		throughputObjects: 1000, throughputReps: 5,
		mixed:      mixedSet{deployments: 100, services: 100, configMaps: 200, customResources: 100},
		gitCommits: 1000, gitClusters: 100, gitReps: 15,
		e2eClusters: 3, e2eBumps: 40, e2eIntervalBumps: 20,
		helmClusters: 3, helmBumps: 40,
		fleetAgents: 100, fleetBumps: 20,
		driftEdits: 40, idleBuckets: 6,
		hubClusters: []int{1000, 10000}, hubWindow: 60 * time.Second,
		footprintApps: []int{10, 100}, footprintSettle: 10 * time.Second, footprintIdle: 20 * time.Second,
		footprintCombined: true,
		diffClusters:      100, diffApps: 20, diffReps: 3,
		soakApps: 1000, soakObjectsPerApp: 10, soakSyncTimeout: 20 * time.Minute,
		soakQuiet: time.Minute, soakDuration: 10 * time.Minute, soakSample: 5 * time.Second, soakAfterResync: true,
		changeClusters: 10000, changeBumps: 3,
	}
}

// measurement is one benchmark: it owns its clusters and stops them.
type measurement struct {
	name string
	run  func(ctx context.Context, e *runEnv) (*Result, error)
}

// runEnv is what every measurement gets.
type runEnv struct {
	scale  scale
	binDir string
	log    *slog.Logger
}

// measurements lists every measurement in run order.
func measurements() []measurement {
	return []measurement{
		{name: "noop-cost", run: noopCost},
		{name: "agent-idle", run: agentIdle},
		{name: "agent-footprint", run: agentFootprint},
		{name: "apply-throughput", run: applyThroughput},
		{name: "git-fetch", run: gitFetch},
		{name: "commit-to-reported", run: commitLatency},
		{name: "helm-commit-to-reported", run: helmLatency},
		{name: "commit-to-reported-fleet", run: fleetLatency},
		{name: "fleet-bump", run: fleetBumpCompare},
		{name: "drift", run: driftLatency},
		{name: "hub-capacity", run: hubCapacity},
		{name: "fleet-diff", run: fleetDiff},
		{name: "agent-scale-soak", run: agentScaleSoak},
		{name: "hub-fleet-change", run: hubFleetChange},
	}
}

// Names lists the measurements' names.
func Names() []string {
	var out []string
	for _, m := range measurements() {
		out = append(out, m.name)
	}
	return out
}

// Run runs the selected measurements one after the other and writes the report. A
// failed measurement is reported with its error and the others still run; Run
// returns an error naming the failed ones.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, name := range cfg.Only {
		if !slices.Contains(Names(), name) {
			return nil, fmt.Errorf("unknown measurement %q (have %v)", name, Names())
		}
	}
	host, _ := os.Hostname()
	rep := &Report{
		Mode: "full", Started: time.Now().UTC(), Host: host, CPUs: runtime.NumCPU(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
		KubernetesVersion: localk8s.KubernetesVersion,
	}
	if cfg.Quick {
		rep.Mode = "quick"
	}
	e := &runEnv{scale: scaleFor(cfg.Quick), binDir: cfg.BinDir, log: cfg.Logger}
	var failed []string
	for _, m := range measurements() {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, m.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		cfg.Logger.Info("measuring", "name", m.name)
		start := time.Now()
		res, err := m.run(ctx, e)
		if res == nil {
			res = &Result{Name: m.name}
		}
		res.Duration = time.Since(start)
		if err != nil {
			res.Error = err.Error()
			// A missed threshold keeps its figures: they say by how much.
			if _, missed := errors.AsType[thresholdError](err); !missed {
				res.Figures, res.Comparisons = nil, nil
			}
			failed = append(failed, m.name)
			cfg.Logger.Error("measurement failed", "name", m.name, "err", err)
		} else {
			cfg.Logger.Info("measured", "name", m.name, "took", res.Duration.Round(time.Millisecond))
		}
		rep.Results = append(rep.Results, *res)
	}
	if cfg.OutDir != "" {
		if err := write(cfg.OutDir, rep); err != nil {
			return rep, err
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("measurements failed: %v", failed)
	}
	return rep, nil
}

// write stores the report as <date>.json and <date>.md in dir.
func write(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory %s: %w", dir, err)
	}
	base := filepath.Join(dir, rep.Started.Format("2006-01-02T150405Z"))
	if rep.Mode == "quick" {
		base += "-quick"
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return errors.Join(
		os.WriteFile(base+".json", append(data, '\n'), 0o644),
		os.WriteFile(base+".md", []byte(Markdown(*rep)), 0o644),
	)
}

// startCluster starts an api-mode testbed cluster for a measurement.
func (e *runEnv) startCluster(ctx context.Context, name string) (*localk8s.Cluster, error) {
	c, err := localk8s.Start(ctx, localk8s.Options{Name: name, BinDir: e.binDir, Logger: e.log})
	if err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", name, err)
	}
	return c, nil
}

// startClusters starts n api-mode testbed clusters, named bench-0 … bench-<n-1> in the
// repository and <prefix><name> as testbed clusters. The returned stop stops those that
// started; it is to be called whatever the error.
func (e *runEnv) startClusters(ctx context.Context, prefix string, n int) (names []string, clusters []*localk8s.Cluster, stop func(), err error) {
	names = make([]string, n)
	clusters = make([]*localk8s.Cluster, n)
	stop = func() {
		for _, c := range clusters {
			if c != nil {
				_ = c.Stop()
			}
		}
	}
	for i := range clusters {
		names[i] = fmt.Sprintf("bench-%d", i)
		if clusters[i], err = e.startCluster(ctx, prefix+names[i]); err != nil {
			return names, clusters, stop, err
		}
	}
	return names, clusters, stop, nil
}

// componentLogger is the logger of the hubs and agents a measurement runs: their
// warnings and errors go to stderr, marked, so a surprising figure can be explained.
func (e *runEnv) componentLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("from", "component")
}
