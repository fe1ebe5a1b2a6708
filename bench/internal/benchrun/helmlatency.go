package benchrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/outpost-gitops/outpost/agent"
	"github.com/outpost-gitops/outpost/internal/chartrepotest"
)

// helmChartFiles is the chart "web" at version: one ConfigMap naming the chart's
// version, the same object as the plain app's.
func helmChartFiles(string) map[string]string {
	return map[string]string{
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  chart: {{ .Chart.Version | quote }}\n",
	}
}

// helmLatency measures a chart version bump through the hub's API (what `outpost
// set` calls) until every cluster's status at the hub shows it applied, beside the
// same bump of a plain app, alternating, on the same hub and agents.
func helmLatency(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "helm-commit-to-reported",
		Description: fmt.Sprintf("One hub (in-process, embedded Git) and %d in-process agents, each on its own api-mode testbed "+
			"cluster, each with two apps: plain (one ConfigMap carrying ${APP_VERSION}) and helm (app.yaml helm: {repo, chart: web}, "+
			"the chart's version defaulting to ${APP_VERSION}, from an HTTP chart repository in this process serving index.yaml and "+
			"a .tgz per version; the chart renders one ConfigMap naming its version). Per round, after a random pause of up to "+
			"250ms, SetVersion of one app on every cluster through the hub API, then the clusters' status at the hub is read every "+
			"%s until each shows the new version Synced; then the same for the other app (the order alternates per round). Each "+
			"helm bump publishes a new chart version first, so every helm bump includes the chart's download (index.yaml and the "+
			"archive) by every agent: agents cache charts by version. Agents are notified by the hub's long-poll and poll Git every %s.",
			sc.helmClusters, statusPollInterval, fleetGitPoll),
		Scale: fmt.Sprintf("%d clusters, %d bumps of each app", sc.helmClusters, sc.helmBumps),
	}
	work, err := os.MkdirTemp("", "outpost-bench-helm-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	compLog := e.componentLogger()

	charts := chartrepotest.New("web", helmChartFiles)
	defer charts.Close()
	version := func(n int) string { return fmt.Sprintf("1.0.%d", n) }
	if err := charts.Publish(version(0)); err != nil {
		return res, err
	}

	names, clusters, stopClusters, err := e.startClusters(ctx, "bench-helm-", sc.helmClusters)
	defer stopClusters()
	if err != nil {
		return res, err
	}
	seed := filepath.Join(work, "seed")
	apps := map[string]map[string]string{
		"plain": configMapApp("plain"),
		"helm":  {"app.yaml": "namespace: helm\nhelm:\n  repo: " + charts.URL + "\n  chart: web\n"},
	}
	if err := writeSeed(seed, names, apps); err != nil {
		return res, err
	}
	// Chart versions are semantic versions: both apps start at 1.0.0.
	for _, n := range names {
		list := "apps:\n  - name: plain\n    version: \"" + version(0) + "\"\n  - name: helm\n    version: \"" + version(0) + "\"\n"
		if err := os.WriteFile(filepath.Join(seed, "clusters", n, "apps.yaml"), []byte(list), 0o644); err != nil {
			return res, fmt.Errorf("seed apps.yaml of %s: %w", n, err)
		}
	}
	h, tokens, err := startHubFor(ctx, work, seed, compLog, names)
	if err != nil {
		return res, err
	}
	defer func() { _ = h.stop() }()
	agents := make([]*component, len(names))
	defer func() {
		for _, a := range agents {
			if a != nil {
				_ = a.stop()
			}
		}
	}()
	pollGit := func(c *agent.Config) { c.GitPollInterval = fleetGitPoll }
	for i, n := range names {
		agents[i] = startAgent(ctx, clusters[i], n, h.url, h.url, tokens[i], filepath.Join(work, "cache-"+n), compLog, pollGit)
	}
	for _, n := range names {
		for app := range apps {
			if _, err := waitHub(ctx, h.admin, n, 100*time.Millisecond, 90*time.Second, synced(app, version(0))); err != nil {
				return res, fmt.Errorf("agents did not sync the first version of %s: %w", app, err)
			}
		}
	}

	got := map[string]*bumpSeries{"plain": {}, "helm": {}}
	downloaded := 0
	for round := 1; round <= sc.helmBumps; round++ {
		v := version(round)
		if err := charts.Publish(v); err != nil {
			return res, err
		}
		order := []string{"plain", "helm"}
		if round%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, app := range order {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(rand.N(250 * time.Millisecond)):
			}
			if err := got[app].bump(ctx, h.admin, names, app, v); err != nil {
				return res, fmt.Errorf("%s, version %s: %w", app, v, err)
			}
		}
		if d := charts.Downloads(v); d != len(names) {
			res.Notes = append(res.Notes, fmt.Sprintf("chart %s was downloaded %d times by %d agents, want once each", v, d, len(names)))
		} else {
			downloaded++
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d of %d helm bumps were downloaded exactly once by each agent (counted at the chart repository)",
		downloaded, sc.helmBumps))
	for _, app := range []string{"helm", "plain"} {
		res.Figures = append(res.Figures, got[app].figures(app)...)
	}
	res.compare("helm: bump → all clusters reported", "plain: bump → all clusters reported", "")
	res.compare("helm: bump → one cluster reported", "plain: bump → one cluster reported", "")
	return res, nil
}
