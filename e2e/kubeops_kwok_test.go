package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/manifests"
)

// TestKubeOpsOnKwok runs the kube fleet's operations (what make e2e-kind drives) on a
// full local cluster, which plays both the hub's cluster and the spoke "dev": install
// from manifests/ with a local image tag, configure the hub on a fresh data volume,
// start the agent with its token, restart the agent and the hub. It checks what
// Kubernetes shows: the Secrets and ConfigMaps hold the values, the pod templates
// changed (ConfigMap reference, restart annotation), the rollouts completed and the
// new pods are Ready on the kwok nodes, the hub's data volume is replaced by the reset
// and kept by a restart.
//
// kwok marks pods Ready without running them, so whether the outpost process in those
// pods answers (reaches the hub, the Git server) is not checked here: TestFleet does
// that against kind clusters (make e2e-kind).
func TestKubeOpsOnKwok(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a full local cluster")
	}
	ctx := t.Context()
	c, err := testenv.Start(ctx, testenv.Options{Name: "e2e-kubeops", Mode: testenv.ModeFull, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	rc := c.RESTConfig()
	cs := kubernetes.NewForConfigOrDie(rc)
	// kind provisions volumes (local-path); here, two static PersistentVolumes: one for
	// the claim of the install, one for the claim the reset creates.
	for i := range 2 {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hub-data-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/tmp/outpost-hub-data-%d", i)}},
			},
		}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k := &kubeOps{hub: rc, spokes: map[string]*rest.Config{"dev": rc}, timeout: 90 * time.Second}
	const image = "outpost:e2e"

	t.Log("install the hub and the agent from manifests/ with a local image tag")
	if err := k.install(ctx, rc, manifests.Hub, image); err != nil {
		t.Fatal(err)
	}
	if err := k.install(ctx, rc, manifests.AgentCluster, image); err != nil {
		t.Fatal(err)
	}
	deps := cs.AppsV1().Deployments(manifests.Namespace)
	dss := cs.AppsV1().DaemonSets(manifests.Namespace)
	must(t, poll(ctx, "hub rolled out", k.timeout, func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, manifests.HubName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return deploymentRolledOut(d)
	}))
	must(t, poll(ctx, "agent rolled out", k.timeout, func(ctx context.Context) (bool, error) {
		ds, err := dss.Get(ctx, manifests.AgentName, metav1.GetOptions{})
		return err == nil && daemonSetRolledOut(ds), err
	}))
	hubPods := podsOf(t, cs, "app.kubernetes.io/name="+manifests.HubName, 1)
	agentPods := podsOf(t, cs, "app.kubernetes.io/name="+manifests.AgentName, 2)
	for _, p := range append(hubPods, agentPods...) {
		if img := p.Spec.Containers[0].Image; img != image {
			t.Errorf("pod %s runs %s, want %s", p.Name, img, image)
		}
	}
	claim := pvcUID(t, cs)

	t.Log("configure the hub on a fresh data volume")
	hub := hubSettings{
		AdminTokens:     "Platform Team <platform@example.com>:" + adminToken + "\n",
		GitURL:          "http://172.18.0.1:43210/outpost.git",
		GitPassword:     "e2e-git-token",
		GitPollInterval: "1s",
		ResetData:       true,
	}
	must(t, k.configureHub(ctx, hub))
	wantSecret(t, cs, "outpost-hub-admin-tokens", "tokens", hub.AdminTokens)
	wantSecret(t, cs, "outpost-hub-git", "password", hub.GitPassword)
	d, err := deps.Get(ctx, manifests.HubName, metav1.GetOptions{})
	must(t, err)
	hubCM := wantConfig(t, cs, &d.Spec.Template.Spec, manifests.HubContainer, map[string]string{
		"OUTPOST_GIT_URL":           hub.GitURL,
		"OUTPOST_GIT_PASSWORD_FILE": "/etc/outpost/git/password",
		"OUTPOST_GIT_POLL_INTERVAL": "1s",
		"OUTPOST_GIT_BRANCH":        "main", // from hub.env, kept
	})
	if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].Image != image {
		t.Errorf("hub Deployment: replicas %d, image %s; want 1, %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, image)
	}
	hubRestarted := d.Spec.Template.Annotations[restartedAtAnnotation]
	if hubRestarted == "" {
		t.Errorf("hub pod template has no %s annotation", restartedAtAnnotation)
	}
	hubPod := podsOf(t, cs, "app.kubernetes.io/name="+manifests.HubName, 1)[0]
	wantPodConfig(t, hubPod, hubCM, hubRestarted)
	if hubPod.UID == hubPods[0].UID {
		t.Errorf("the hub pod %s was not replaced", hubPod.Name)
	}
	resetClaim := pvcUID(t, cs)
	if resetClaim == claim {
		t.Errorf("PersistentVolumeClaim %s was not replaced by the reset", hubDataClaim)
	}

	t.Log("start dev's agent with its token")
	agent := agentSettings{
		Cluster: "dev", Token: "dev-token-0123456789abcdef", HubURL: "http://172.18.0.2:30080",
		GitURL: hub.GitURL, GitPassword: hub.GitPassword, Interval: "1m",
	}
	must(t, k.configureAgent(ctx, agent))
	wantSecret(t, cs, "outpost-agent-token", "token", agent.Token)
	wantSecret(t, cs, "outpost-git-credentials", "password", agent.GitPassword)
	ds, err := dss.Get(ctx, manifests.AgentName, metav1.GetOptions{})
	must(t, err)
	agentCM := wantConfig(t, cs, &ds.Spec.Template.Spec, manifests.AgentContainer, map[string]string{
		"OUTPOST_CLUSTER":           "dev",
		"OUTPOST_HUB_URL":           agent.HubURL,
		"OUTPOST_GIT_URL":           agent.GitURL,
		"OUTPOST_GIT_PASSWORD_FILE": "/etc/outpost/git/password",
		"OUTPOST_INTERVAL":          "1m",
		"OUTPOST_TOKEN_FILE":        "/etc/outpost/token/token", // from agent.env, kept
	})
	agentRestarted := ds.Spec.Template.Annotations[restartedAtAnnotation]
	started := podsOf(t, cs, "app.kubernetes.io/name="+manifests.AgentName, 2)
	for _, p := range started {
		wantPodConfig(t, p, agentCM, agentRestarted)
	}

	t.Log("restart dev's agent: new pods, same configuration")
	must(t, k.restartAgent(ctx, "dev"))
	ds, err = dss.Get(ctx, manifests.AgentName, metav1.GetOptions{})
	must(t, err)
	if a := ds.Spec.Template.Annotations[restartedAtAnnotation]; a == "" || a == agentRestarted {
		t.Errorf("agent restart annotation %q, want a new one (was %q)", a, agentRestarted)
	}
	old := map[types.UID]bool{}
	for _, p := range started {
		old[p.UID] = true
	}
	for _, p := range podsOf(t, cs, "app.kubernetes.io/name="+manifests.AgentName, 2) {
		wantPodConfig(t, p, agentCM, ds.Spec.Template.Annotations[restartedAtAnnotation])
		if old[p.UID] {
			t.Errorf("agent pod %s was not replaced by the restart", p.Name)
		}
	}

	t.Log("restart the hub: a new pod on the same data volume")
	must(t, k.restartHub(ctx))
	d, err = deps.Get(ctx, manifests.HubName, metav1.GetOptions{})
	must(t, err)
	if a := d.Spec.Template.Annotations[restartedAtAnnotation]; a == "" || a == hubRestarted {
		t.Errorf("hub restart annotation %q, want a new one (was %q)", a, hubRestarted)
	}
	p := podsOf(t, cs, "app.kubernetes.io/name="+manifests.HubName, 1)[0]
	wantPodConfig(t, p, hubCM, d.Spec.Template.Annotations[restartedAtAnnotation])
	if p.UID == hubPod.UID {
		t.Errorf("the hub pod %s was not replaced by the restart", p.Name)
	}
	if uid := pvcUID(t, cs); uid != resetClaim {
		t.Errorf("PersistentVolumeClaim %s replaced by a restart (uid %s, want %s)", hubDataClaim, uid, resetClaim)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// podsOf returns the pods of selector that are not being deleted, failing unless
// there are n, each Ready on a distinct kwok node.
func podsOf(t *testing.T, cs kubernetes.Interface, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	// A rollout is complete before the old pods' deletion is: wait for them to go.
	err := poll(t.Context(), "pods "+selector, 30*time.Second, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(manifests.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) == n, nil
	})
	if err != nil {
		t.Fatalf("%v: have %d", err, len(pods))
	}
	nodes := map[string]bool{}
	for _, p := range pods {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready || !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") || nodes[p.Spec.NodeName] {
			t.Errorf("pod %s: ready %v on node %q (nodes so far %v)", p.Name, ready, p.Spec.NodeName, nodes)
		}
		nodes[p.Spec.NodeName] = true
	}
	return pods
}

// pvcUID returns the uid of the hub's data claim, once it is Bound.
func pvcUID(t *testing.T, cs kubernetes.Interface) types.UID {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	must(t, poll(t.Context(), "PersistentVolumeClaim "+hubDataClaim+" bound", 30*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		pvc, err = cs.CoreV1().PersistentVolumeClaims(manifests.Namespace).Get(ctx, hubDataClaim, metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
	}))
	return pvc.UID
}

func wantSecret(t *testing.T, cs kubernetes.Interface, name, key, want string) {
	t.Helper()
	s, err := cs.CoreV1().Secrets(manifests.Namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("Secret %s: %v", name, err)
		return
	}
	if got := string(s.Data[key]); got != want {
		t.Errorf("Secret %s key %s = %q, want %q", name, key, got, want)
	}
}

// wantConfig checks the ConfigMap the container's envFrom names and returns its name.
func wantConfig(t *testing.T, cs kubernetes.Interface, spec *corev1.PodSpec, container string, want map[string]string) string {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name != container {
			continue
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil {
			t.Fatalf("container %s: envFrom %+v, want one ConfigMap", container, c.EnvFrom)
		}
		name := c.EnvFrom[0].ConfigMapRef.Name
		cm, err := cs.CoreV1().ConfigMaps(manifests.Namespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("container %s: ConfigMap %s: %v", container, name, err)
		}
		for k, v := range want {
			if cm.Data[k] != v {
				t.Errorf("ConfigMap %s: %s = %q, want %q", name, k, cm.Data[k], v)
			}
		}
		return name
	}
	t.Fatalf("no container %s", container)
	return ""
}

// wantPodConfig checks that a pod runs the template with ConfigMap cm and restart
// annotation restartedAt.
func wantPodConfig(t *testing.T, p corev1.Pod, cm, restartedAt string) {
	t.Helper()
	if got := p.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != cm {
		t.Errorf("pod %s: ConfigMap %s, want %s", p.Name, got, cm)
	}
	if got := p.Annotations[restartedAtAnnotation]; got != restartedAt {
		t.Errorf("pod %s: %s = %q, want %q", p.Name, restartedAtAnnotation, got, restartedAt)
	}
}
