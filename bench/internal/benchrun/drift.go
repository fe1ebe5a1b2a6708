package benchrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// driftLatency measures how long an out-of-band edit takes to show as drift at the
// hub (drift: report) and to be undone by the agent (drift: correct).
func driftLatency(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "drift",
		Description: fmt.Sprintf("One hub and one in-process agent on an api-mode testbed cluster, two apps of one "+
			"Deployment each. Per edit, the Deployment's replicas are set through the scale subresource with "+
			"field manager \"kubectl\" (as `kubectl scale` does). report: time until the hub's status of the "+
			"app shows the drift of spec.replicas with the new live value (read every %s). correct: time until "+
			"the agent has restored replicas (Deployment read every 10ms).", statusPollInterval),
		Scale: fmt.Sprintf("%d edits per policy", sc.driftEdits),
	}
	work, err := os.MkdirTemp("", "outpost-bench-drift-")
	if err != nil {
		return res, fmt.Errorf("work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	compLog := e.componentLogger()

	cluster, err := e.startCluster(ctx, "bench-drift")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	kube, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return res, fmt.Errorf("clientset: %w", err)
	}
	const name = "bench-drift"
	seed := filepath.Join(work, "seed")
	apps := map[string]map[string]string{"watched": deploymentApp("watched", "report"), "fixed": deploymentApp("fixed", "correct")}
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
	a := startAgent(ctx, cluster, name, h.url, h.url, token, filepath.Join(work, "cache"), compLog, nil)
	defer func() { _ = a.stop() }()
	for app := range apps {
		if _, err := waitHub(ctx, h.admin, name, 100*time.Millisecond, 90*time.Second, synced(app, "1")); err != nil {
			return res, fmt.Errorf("agent did not sync app %s: %w", app, err)
		}
	}

	scale := func(ns string, replicas int32) error {
		s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
		if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, "web", s, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
			return fmt.Errorf("scale deployment %s/web to %d: %w", ns, replicas, err)
		}
		return nil
	}
	var report, correct []time.Duration
	for k := range sc.driftEdits {
		replicas := int32(2 + k)
		start := time.Now()
		if err := scale("watched", replicas); err != nil {
			return res, err
		}
		at, err := waitHub(ctx, h.admin, name, statusPollInterval, time.Minute, replicasDrift("watched", replicas))
		if err != nil {
			return res, fmt.Errorf("drift of edit %d not visible: %w", k, err)
		}
		report = append(report, at.Sub(start))
	}
	for k := range sc.driftEdits {
		replicas := int32(2 + k)
		start := time.Now()
		if err := scale("fixed", replicas); err != nil {
			return res, err
		}
		took, err := waitRestored(ctx, kube, "fixed", start)
		if err != nil {
			return res, fmt.Errorf("edit %d not corrected: %w", k, err)
		}
		correct = append(correct, took)
		// Let the correction's own watch events settle before the next edit.
		time.Sleep(100 * time.Millisecond)
	}
	res.Figures = append(res.Figures,
		figure("report: edit → drift visible at the hub", "ms", millis(report)),
		figure("correct: edit → restored by the agent", "ms", millis(correct)),
	)
	if f := res.Figures[0]; f.P99 >= 1000 {
		res.Notes = append(res.Notes, fmt.Sprintf("target missed: p99 %.0f ms ≥ 1 s (edit → drift visible at the hub)", f.P99))
	}
	res.Notes = append(res.Notes, "Anchors (published, not measured here): Flux sees drift at its next interval "+
		"(minutes); Argo CD watches (seconds).")
	return res, nil
}

// replicasDrift holds when app's drift at the hub shows spec.replicas live at replicas.
func replicasDrift(app string, replicas int32) func(*apiv1.ClusterStatus) bool {
	want := strconv.Itoa(int(replicas))
	return func(st *apiv1.ClusterStatus) bool {
		a, ok := appState(st, app)
		if !ok {
			return false
		}
		for _, d := range a.Drift {
			for _, f := range d.Fields {
				if f.Path == "spec.replicas" && string(bytes.TrimSpace(f.Live)) == want {
					return true
				}
			}
		}
		return false
	}
}

// waitRestored polls the Deployment ns/web until its replicas are back at 1.
func waitRestored(ctx context.Context, kube kubernetes.Interface, ns string, start time.Time) (time.Duration, error) {
	deadline := start.Add(time.Minute)
	for time.Now().Before(deadline) {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 1 {
			return time.Since(start), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("deployment %s/web not restored to 1 replica within a minute", ns)
}
