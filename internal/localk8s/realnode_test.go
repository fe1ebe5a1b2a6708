package localk8s

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// realNodesEnv enables the tests that start real nodes (root, containerd, runc, CNI
// plugins and `make testbin-real-nodes`; see docs/real-nodes.md).
const realNodesEnv = "OUTPOST_REAL_NODES"

// TestRealNodeRunsAPod starts a cluster with one real node, runs a pod of the pause
// image on it through the kubelet, containerd and the CNI bridge, and checks that Stop
// leaves no container, mount, bridge or cgroup behind.
func TestRealNodeRunsAPod(t *testing.T) {
	if os.Getenv(realNodesEnv) == "" {
		t.Skipf("set %s=1 to run real nodes (root, containerd, runc, CNI; docs/real-nodes.md)", realNodesEnv)
	}
	ctx := t.Context()
	c, err := Start(ctx, Options{Name: "realnode", Mode: ModeFull, RealNodes: 1, StartTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.KeepFiles()
			_ = c.Stop()
		}
	}()
	cs := clientset(t, c)
	ns := createNamespace(t, c)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: ns},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name: "pause", Image: PauseImage, ImagePullPolicy: corev1.PullNever,
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(true)},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err = cs.CoreV1().Pods(ns).Get(ctx, "pause", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not Running after 90s: %+v", got.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got.Spec.NodeName != "real-node-0" {
		t.Errorf("pod scheduled to %q, want real-node-0", got.Spec.NodeName)
	}
	if _, subnet, _ := net.ParseCIDR("10.244.0.0/24"); !subnet.Contains(net.ParseIP(got.Status.PodIP)) {
		t.Errorf("pod IP %q is not in real-node-0's bridge subnet %s", got.Status.PodIP, subnet)
	}
	if len(got.Status.ContainerStatuses) != 1 || !strings.HasPrefix(got.Status.ContainerStatuses[0].ContainerID, "containerd://") {
		t.Errorf("container statuses %+v, want one containerd container", got.Status.ContainerStatuses)
	}

	dir := c.Dir()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s left behind (%v)", dir, err)
	}
	if _, err := net.InterfaceByName("outpost-br0"); err == nil {
		t.Error("bridge outpost-br0 left behind")
	}
	mounts, err := cgroupMounts(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, "outpost-real-node-0")); !os.IsNotExist(err) {
			t.Errorf("cgroup %s/outpost-real-node-0 left behind (%v)", m, err)
		}
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mountinfo), dir) {
		t.Errorf("mounts under %s left behind", dir)
	}
	links, _ := os.ReadDir(containerLogLinks)
	for _, l := range links {
		if target, _ := os.Readlink(filepath.Join(containerLogLinks, l.Name())); strings.HasPrefix(target, dir) {
			t.Errorf("container log link %s -> %s left behind", l.Name(), target)
		}
	}
}

// TestRealNodeOptionsRejected: real nodes need ModeFull, cannot be detached, and need
// the kubelet of make testbin-real-nodes; the errors say so before anything starts.
func TestRealNodeOptionsRejected(t *testing.T) {
	cases := map[string]struct {
		opts Options
		want string
	}{
		"api mode": {Options{Name: "r", RealNodes: 1}, "real nodes need ModeFull"},
		"detached": {Options{Name: "r", Mode: ModeFull, RealNodes: 1, Detach: true}, "real nodes cannot be detached"},
	}
	// A testbed without the kubelet (built by make testbin-real-nodes only).
	binDir, err := DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	noKubelet := t.TempDir()
	entries, err := os.ReadDir(binDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "k8s-") {
			if err := os.Symlink(filepath.Join(binDir, e.Name()), filepath.Join(noKubelet, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		k8s := filepath.Join(noKubelet, e.Name())
		if err := os.Mkdir(k8s, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
			if err := os.Symlink(filepath.Join(binDir, e.Name(), b), filepath.Join(k8s, b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases["no kubelet"] = struct {
		opts Options
		want string
	}{Options{Name: "r", Mode: ModeFull, RealNodes: 1, BinDir: noKubelet}, "kubelet: not found; run `make testbin-real-nodes` to build it (or set OUTPOST_TESTBIN_DIR)"}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := Start(t.Context(), tc.opts)
			if err == nil {
				_ = c.Stop()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
