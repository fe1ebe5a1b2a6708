package benchrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// fleetDiff measures `outpost diff`'s engine on a fleet repository: base and head
// checkouts of clusters × apps, for a typical change (one app bumped on every
// cluster: the other apps' inputs are unchanged and rendered once) and for a change of
// every render (a variable every app uses changed in every cluster.yaml).
func fleetDiff(ctx context.Context, e *runEnv) (*Result, error) {
	sc := e.scale
	res := &Result{
		Name: "fleet-diff",
		Description: "sync/fleetdiff.Compute (what `outpost diff` runs) between two checkouts of a repository of " +
			"clusters × apps (each app a Deployment, a Service and a ConfigMap with substituted variables). " +
			"'one app bumped': apps.yaml of every cluster bumps one app; 'every render changed': a variable " +
			"every app uses changes in every cluster.yaml. Target (issue #14): under 10 s for 100 × 20 on 2 cores.",
		Scale: fmt.Sprintf("%d clusters × %d apps, %d repetitions", sc.diffClusters, sc.diffApps, sc.diffReps),
	}
	work, err := os.MkdirTemp("", "outpost-bench-diff-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	base := filepath.Join(work, "base")
	if err := writeFleetRepo(base, sc.diffClusters, sc.diffApps, "1.0", "blue"); err != nil {
		return res, err
	}
	bump := filepath.Join(work, "bump")
	if err := writeFleetRepo(bump, sc.diffClusters, sc.diffApps, "1.1", "blue"); err != nil {
		return res, err
	}
	all := filepath.Join(work, "all")
	if err := writeFleetRepo(all, sc.diffClusters, sc.diffApps, "1.0", "green"); err != nil {
		return res, err
	}
	for _, c := range []struct{ name, head string }{{"one app bumped", bump}, {"every render changed", all}} {
		var samples []float64
		var renders, reused int
		for range sc.diffReps {
			start := time.Now()
			r, err := fleetdiff.Compute(ctx, base, c.head, fleetdiff.Options{})
			if err != nil {
				return res, fmt.Errorf("%s: %w", c.name, err)
			}
			if len(r.Errors) > 0 {
				return res, fmt.Errorf("%s: %d errors, first %s", c.name, len(r.Errors), r.Errors[0].Message)
			}
			samples = append(samples, float64(time.Since(start).Milliseconds()))
			renders, reused = r.Renders, r.Reused
		}
		res.Figures = append(res.Figures, figure("diff, "+c.name, "ms", samples))
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d renders, %d head renders reused from the base", c.name, renders, reused))
	}
	return res, nil
}

// writeFleetRepo writes a repository of clusters × apps; version is the first app's
// version on every cluster (the others stay at 1.0), colour a variable of every
// cluster that every app uses.
func writeFleetRepo(dir string, clusters, apps int, version, colour string) error {
	files := map[string]string{}
	for a := range apps {
		name := fmt.Sprintf("app-%02d", a)
		files["apps/"+name+"/app.yaml"] = "namespace: " + name + "\n"
		files["apps/"+name+"/deploy.yaml"] = strings.ReplaceAll(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: @APP@
  labels:
    colour: "${colour}"
spec:
  replicas: 2
  selector: {matchLabels: {app: @APP@}}
  template:
    metadata: {labels: {app: @APP@}}
    spec:
      containers:
        - name: @APP@
          image: registry.example.com/@APP@:${APP_VERSION}
          env:
            - name: CLUSTER
              value: "${CLUSTER_NAME}"
          ports: [{containerPort: 8080, name: http}]
`, "@APP@", name)
		files["apps/"+name+"/svc.yaml"] = strings.ReplaceAll("apiVersion: v1\nkind: Service\nmetadata:\n  name: @APP@\nspec:\n  selector: {app: @APP@}\n  ports: [{port: 80, targetPort: http}]\n", "@APP@", name)
		files["apps/"+name+"/cm.yaml"] = strings.ReplaceAll("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: @APP@\ndata:\n  colour: \"${colour}\"\n  region: \"${CLUSTER_LABEL_region}\"\n", "@APP@", name)
	}
	for c := range clusters {
		name := fmt.Sprintf("cluster-%03d", c)
		files["clusters/"+name+"/cluster.yaml"] = fmt.Sprintf("labels: {region: r%d}\nvars: {colour: %s}\n", c%4, colour)
		var b strings.Builder
		b.WriteString("apps:\n")
		for a := range apps {
			v := "1.0"
			if a == 0 {
				v = version
			}
			fmt.Fprintf(&b, "  - name: app-%02d\n    version: %q\n", a, v)
		}
		files["clusters/"+name+"/apps.yaml"] = b.String()
	}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
