package benchrun

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/internal/localk8s"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/object"
)

// noopConcurrency is the per-app concurrency of both Outpost and the Flux-style cycle.
const noopConcurrency = 16

// cycleCost is what one cycle over every app cost.
type cycleCost struct {
	took                   time.Duration
	reads, writes, dryRuns int
}

// noopCost measures a sync cycle in which nothing changed: Outpost's sync/apply
// against a Flux-style cycle (fluxcd/pkg/ssa ApplyAll, a GET and a dry-run per
// object) on identical objects in their own namespaces of the same apiserver,
// cycles interleaved.
func noopCost(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "noop-cost",
		Description: "One sync cycle over every app when nothing changed. Outpost: sync/apply SyncApp per app " +
			"(hash + resourceVersion records, one metadata LIST per kind and namespace). Flux-style: " +
			"fluxcd/pkg/ssa ResourceManager.ApplyAll per app (GET + server-side dry-run per object). " +
			"Requests counted client-side (localk8s.Requests); cycles interleaved on one apiserver; " +
			"the first (create) cycle and one warm-up cycle are not counted.",
		Scale: fmt.Sprintf("%d apps × %d objects (ConfigMaps, headless Services), %d cycles",
			sc.noopApps, sc.noopObjectsPerApp, sc.noopCycles),
	}
	cluster, err := e.startCluster(ctx, "bench-noop")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()

	outReq, fluxReq := &localk8s.Requests{}, &localk8s.Requests{}
	outClient, plain, err := countedClient(cluster, outReq)
	if err != nil {
		return res, err
	}
	fluxClient, _, err := countedClient(cluster, fluxReq)
	if err != nil {
		return res, err
	}
	syncer, err := apply.New(apply.Config{Client: outClient, Concurrency: noopConcurrency})
	if err != nil {
		return res, fmt.Errorf("outpost syncer: %w", err)
	}
	rm := ssa.NewResourceManager(fluxClient, polling.NewStatusPoller(fluxClient, fluxClient.RESTMapper(), polling.Options{}),
		ssa.Owner{Field: "flux", Group: "kustomize.toolkit.fluxcd.io"})
	rm.SetConcurrency(noopConcurrency)

	outApps, fluxApps := map[string][]*unstructured.Unstructured{}, map[string][]*unstructured.Unstructured{}
	for i := range sc.noopApps {
		outNS, fluxNS := fmt.Sprintf("noop-outpost-%03d", i), fmt.Sprintf("noop-flux-%03d", i)
		if err := createNamespaces(ctx, plain, outNS, fluxNS); err != nil {
			return res, err
		}
		outApps[outNS] = ownedBy(outNS, appObjects(outNS, sc.noopObjectsPerApp))
		fluxApps[fluxNS] = appObjects(fluxNS, sc.noopObjectsPerApp)
	}

	outpostCycle := func() (cycleCost, error) {
		outReq.Reset()
		start := time.Now()
		for app, objs := range outApps {
			r, err := syncer.SyncApp(ctx, app, objs, apply.Options{})
			if err != nil {
				return cycleCost{}, fmt.Errorf("outpost sync of app %s: %w", app, err)
			}
			if f := r.Changes.Failed(); len(f) > 0 {
				return cycleCost{}, fmt.Errorf("outpost sync of app %s: %d objects failed, first: %s", app, len(f), f[0].Error)
			}
		}
		c := cycleCost{took: time.Since(start)}
		c.writes, c.dryRuns, c.reads = outReq.Counts()
		return c, nil
	}
	fluxCycle := func() (cycleCost, error) {
		fluxReq.Reset()
		start := time.Now()
		for app, objs := range fluxApps {
			if _, err := rm.ApplyAll(ctx, deepCopy(objs), ssa.DefaultApplyOptions()); err != nil {
				return cycleCost{}, fmt.Errorf("flux-style apply of app %s: %w", app, err)
			}
		}
		c := cycleCost{took: time.Since(start)}
		c.writes, c.dryRuns, c.reads = fluxReq.Counts()
		return c, nil
	}

	// Create everything, then one warm-up cycle each (discovery, REST mappings).
	for range 2 {
		if _, err := outpostCycle(); err != nil {
			return res, err
		}
		if _, err := fluxCycle(); err != nil {
			return res, err
		}
	}
	var outCosts, fluxCosts []cycleCost
	for i := range sc.noopCycles {
		// Alternate which tool goes first, so neither always meets a warmer apiserver.
		first, second := outpostCycle, fluxCycle
		if i%2 == 1 {
			first, second = fluxCycle, outpostCycle
		}
		a, err := first()
		if err != nil {
			return res, err
		}
		b, err := second()
		if err != nil {
			return res, err
		}
		if i%2 == 1 {
			a, b = b, a
		}
		outCosts, fluxCosts = append(outCosts, a), append(fluxCosts, b)
	}
	res.Figures = append(costFigures("outpost", outCosts), costFigures("flux-style", fluxCosts)...)
	res.compare("outpost cycle time", "flux-style cycle time", "")
	res.compare("outpost requests", "flux-style requests", "")
	if w, d := res.Figures[1].Median, res.Figures[2].Median; w != 0 || d != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("target missed: Outpost made %.0f writes and %.0f dry-runs in a no-op cycle (target 0 and 0)", w, d))
	}
	objects := sc.noopApps * sc.noopObjectsPerApp
	res.Notes = append(res.Notes, fmt.Sprintf("%d objects per cycle; a Flux-style cycle costs about one GET and one dry-run per object", objects))
	return res, nil
}

// costFigures turns cycle costs into figures named after tool.
func costFigures(tool string, costs []cycleCost) []Figure {
	var reads, writes, dry, total []float64
	var took []time.Duration
	for _, c := range costs {
		reads = append(reads, float64(c.reads))
		writes = append(writes, float64(c.writes))
		dry = append(dry, float64(c.dryRuns))
		total = append(total, float64(c.reads+c.writes+c.dryRuns))
		took = append(took, c.took)
	}
	return []Figure{
		figure(tool+" reads", "requests/cycle", reads),
		figure(tool+" writes", "requests/cycle", writes),
		figure(tool+" dry-runs", "requests/cycle", dry),
		figure(tool+" requests", "requests/cycle", total),
		figure(tool+" cycle time", "ms", millis(took)),
	}
}

// ownedBy labels objs as app's, as Outpost's render step does before apply.
func ownedBy(app string, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	owner := object.DefaultOwner()
	for _, o := range objs {
		owner.SetLabels(o, app)
	}
	return objs
}
