package benchrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// fleetBumpApp is the one app every cluster of fleet-bump runs.
const fleetBumpApp = "web"

// fleetBumpCompare is issue #12's fleet-wide bump: the fleet of commit-to-reported-fleet
// (N real agents in-process on one apiserver, each its own cluster and namespace), but
// with ONE app on every cluster, bumped alternately as one bulk commit (POST
// /api/v1/apps/{app}/bulk with a selector matching all) and as N single SetVersion
// calls at once (N commits, today's way), each measured until every agent reported
// the new version Synced.
func fleetBumpCompare(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	n := sc.fleetAgents
	rounds := max(2, sc.fleetBumps/2)
	res := &Result{
		Name: "fleet-bump",
		Description: fmt.Sprintf("The fleet of commit-to-reported-fleet (%d real agents in-process on one api-mode "+
			"apiserver, each registered at one in-process hub as its own cluster and confined to its own namespace), "+
			"all running ONE app (a ConfigMap carrying the version, in the namespace named like the cluster). "+
			"Bumps alternate between a bulk bump (one POST /api/v1/apps/%s/bulk with the selector env=bench: one "+
			"commit for all clusters) and single bumps (%d SetVersion calls at once: %d commits, serialized by the "+
			"hub), after a random pause up to 250 ms each. A bump is measured from its first API call to the hub's "+
			"receive time of the last cluster's Synced report of the new version (sync events read every %s).",
			n, fleetBumpApp, n, n, fleetEventPoll),
		Scale: fmt.Sprintf("%d agents / clusters / namespaces on one apiserver, %d bulk and %d single bumps", n, rounds, rounds),
	}
	work, err := os.MkdirTemp("", "outpost-bench-bump-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	compLog := e.componentLogger()

	cluster, err := e.startCluster(ctx, "bench-bump")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	c, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	names := make([]string, n)
	apps := map[string]string{} // cluster → the app, the same for all
	for i := range names {
		names[i] = fmt.Sprintf("fleet-%03d", i)
		apps[names[i]] = fleetBumpApp
	}
	if err := createNamespaces(ctx, c, names...); err != nil {
		return res, err
	}
	seed := filepath.Join(work, "seed")
	if err := writeBumpSeed(seed, names); err != nil {
		return res, err
	}
	h, tokens, err := startHubFor(ctx, work, seed, compLog, names)
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()
	cacheBase, _ := fleetCacheBase(work)
	defer func() { _ = os.RemoveAll(cacheBase) }()
	stopAgents := startFleetAgents(ctx, cluster, h, names, tokens, cacheBase, compLog)
	defer stopAgents()
	if err := waitFleetSynced(ctx, h.admin, apps, "1"); err != nil {
		return res, fmt.Errorf("agents did not sync the first version: %w", err)
	}

	var bulkAll, bulkCall, singleAll, singleCalls []time.Duration
	version := 1
	for range rounds {
		for _, bulk := range []bool{true, false} {
			if err := sleep(ctx, rand.N(250*time.Millisecond)); err != nil {
				return res, err
			}
			version++
			v := fmt.Sprint(version)
			if bulk {
				all, call, err := bulkBump(ctx, h.admin, apps, v)
				if err != nil {
					return res, fmt.Errorf("bulk bump to %s: %w", v, err)
				}
				bulkAll, bulkCall = append(bulkAll, all), append(bulkCall, call)
				continue
			}
			all, _, _, calls, err := fleetBump(ctx, h.admin, apps, v)
			if err != nil {
				return res, fmt.Errorf("single bumps to %s: %w", v, err)
			}
			singleAll, singleCalls = append(singleAll, all), append(singleCalls, calls)
		}
	}
	bulkName, singleName := fmt.Sprintf("bulk: bump → all %d clusters reported", n), fmt.Sprintf("%d single commits: bump → all %d clusters reported", n, n)
	bulkCallName, singleCallName := "bulk: bump → its one commit answered", fmt.Sprintf("%d single commits: bump → all %d calls answered", n, n)
	res.Figures = append(res.Figures,
		figure(bulkName, "ms", millis(bulkAll)),
		figure(singleName, "ms", millis(singleAll)),
		figure(bulkCallName, "ms", millis(bulkCall)),
		figure(singleCallName, "ms", millis(singleCalls)),
	)
	res.compare(bulkName, singleName, "")
	res.compare(bulkCallName, singleCallName, "")
	return res, nil
}

// writeBumpSeed writes a GitOps repository of the clusters names, labelled env=bench,
// each running fleetBumpApp at version "1": one ConfigMap carrying the version, in the
// namespace named like the cluster.
func writeBumpSeed(dir string, names []string) error {
	files := map[string]string{
		filepath.Join("apps", fleetBumpApp, "configmap.yaml"): "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: release\n" +
			"  namespace: ${CLUSTER_NAME}\ndata:\n  version: \"${APP_VERSION}\"\n",
	}
	for _, c := range names {
		files[filepath.Join("clusters", c, "apps.yaml")] = fmt.Sprintf("apps:\n  - name: %s\n    version: \"1\"\n", fleetBumpApp)
		files[filepath.Join("clusters", c, "cluster.yaml")] = "labels:\n  env: bench\n"
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
	return nil
}

// bulkBump sets fleetBumpApp to version on every cluster of apps with one bulk write
// and reads the hub's sync events until each cluster reported it Synced. It returns
// the time until the last report and until the bulk call was answered.
func bulkBump(ctx context.Context, admin *hubapi.Client, apps map[string]string, version string) (all, call time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, fleetBumpTimeout)
	defer cancel()
	start := time.Now()
	res, err := admin.Bulk(ctx, fleetBumpApp, apiv1.BulkRequest{Action: apiv1.BulkSet, Version: version, Selector: "env=bench"}, hubapi.WriteOptions{})
	if err != nil {
		return 0, 0, err
	}
	call = time.Since(start)
	if !res.Committed || len(res.Changes) != len(apps) {
		return 0, 0, fmt.Errorf("bulk write committed %v on %d clusters, want %d", res.Committed, len(res.Changes), len(apps))
	}
	reported := map[string]time.Time{}
	var lastErr error
	for len(reported) < len(apps) {
		list, err := admin.Events(ctx, hubapi.EventQuery{Type: apiv1.EventSync, Limit: 1000})
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
				break
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("%d of %d clusters reported %s Synced within %s (last error: %v)", len(reported), len(apps), version, fleetBumpTimeout, lastErr)
		case <-time.After(fleetEventPoll):
		}
	}
	for _, t := range reported {
		all = max(all, t.Sub(start))
	}
	return all, call, nil
}
