package localk8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// env is the package's shared ModeAPI cluster.
var env *Cluster

// TestMain starts env as internal/testenv.RunMain does (which this package cannot
// import: testenv imports it).
func TestMain(m *testing.M) {
	c, err := Start(context.Background(), Options{Name: "localk8s"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "localk8s: %v\n", err)
		os.Exit(1)
	}
	env = c
	code := m.Run()
	if code != 0 {
		c.KeepFiles()
		fmt.Printf("localk8s: tests failed; cluster files and logs kept in %s\n", c.Dir())
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "localk8s: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// createNamespace creates a namespace for t in c, as testenv's CreateNamespace does.
func createNamespace(t *testing.T, c *Cluster) string {
	t.Helper()
	name := "t-" + RandomSuffix()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := clientset(t, c).CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func clientset(t *testing.T, c *Cluster) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestAPIClusterServerSideApply(t *testing.T) {
	t.Logf("api cluster startup: %s", env.StartupDuration())
	cs := clientset(t, env)
	ns := createNamespace(t, env)
	cm := corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"color": "blue"})
	if _, err := cs.CoreV1().ConfigMaps(ns).Apply(t.Context(), cm, metav1.ApplyOptions{FieldManager: "outpost-test", Force: true}); err != nil {
		t.Fatalf("server-side apply: %v", err)
	}
	got, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if got.Data["color"] != "blue" {
		t.Errorf("data = %v, want color=blue", got.Data)
	}
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != "outpost-test" || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managedFields = %+v, want one Apply entry by outpost-test", got.ManagedFields)
	}
	// The kubeconfig on disk works too.
	if _, err := os.Stat(env.KubeconfigPath()); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}
}

func TestRBACIsReal(t *testing.T) {
	ctx := t.Context()
	cs := clientset(t, env)
	ns := createNamespace(t, env)
	other := createNamespace(t, env)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "cm-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "agent", Namespace: ns}},
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := env.ServiceAccountToken(ctx, ns, "agent")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(env.TokenConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	// Inside the Role: allowed.
	if _, err := sa.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list configmaps in %s (inside the Role): %v", ns, err)
	}
	// Outside it: refused with 403, for another resource, another namespace, another verb.
	outside := map[string]func() error{
		"secrets in own namespace": func() error {
			_, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		},
		"configmaps in another namespace": func() error {
			_, err := sa.CoreV1().ConfigMaps(other).List(ctx, metav1.ListOptions{})
			return err
		},
		"create configmap (verb not granted)": func() error {
			_, err := sa.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		},
	}
	for name, call := range outside {
		if err := call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: err = %v, want 403 Forbidden", name, err)
		}
	}
	// A forged token is not authenticated at all.
	forged, _ := kubernetes.NewForConfig(env.TokenConfig(token[:len(token)-4] + "AAAA"))
	if _, err := forged.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("forged token: err = %v, want 401", err)
	}
}

func TestFullClusterWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("full cluster in -short mode")
	}
	c, err := Start(t.Context(), Options{Name: "full", Mode: ModeFull, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("full cluster (2 kwok nodes) startup: %s", c.StartupDuration())
	cs := clientset(t, c)
	ns := createNamespace(t, c)
	labels := map[string]string{"app": "web"}
	podSpec := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podSpec},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: ns},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podSpec},
	}
	start := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(t.Context(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "Deployment web Available with 3 ready replicas", func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue && d.Status.ReadyReplicas == 3 {
				return nil
			}
		}
		return errors.New("status: " + d.Status.String())
	})
	t.Logf("deployment Available after %s", time.Since(start).Round(time.Millisecond))
	eventually(t, 60*time.Second, "DaemonSet node-agent with one ready pod per node", func() error {
		d, err := cs.AppsV1().DaemonSets(ns).Get(t.Context(), "node-agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.DesiredNumberScheduled != 2 || d.Status.NumberReady != 2 {
			return errors.New("status: " + d.Status.String())
		}
		return nil
	})
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods.Items {
		if len(p.OwnerReferences) > 0 && p.OwnerReferences[0].Kind == "DaemonSet" {
			perNode[p.Spec.NodeName]++
		}
	}
	if len(perNode) != 2 || perNode["kwok-node-0"] != 1 || perNode["kwok-node-1"] != 1 {
		t.Errorf("DaemonSet pods per node = %v, want one on each of kwok-node-0 and kwok-node-1", perNode)
	}
}

func TestThreeClustersSideBySideLeaveNoProcess(t *testing.T) {
	names := []string{"east", "west", "north"}
	clusters := make([]*Cluster, len(names))
	errs := make([]error, len(names))
	start := time.Now()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { clusters[i], errs[i] = Start(t.Context(), Options{Name: name}) })
	}
	wg.Wait()
	var pids []int
	for i, c := range clusters {
		if errs[i] != nil {
			t.Fatalf("start %s: %v", names[i], errs[i])
		}
		t.Cleanup(func() { _ = c.Stop() })
		pids = append(pids, c.PIDs()...)
	}
	t.Logf("three api clusters started concurrently in %s", time.Since(start).Round(time.Millisecond))
	// Each is a separate, working cluster: a namespace made in one is absent in the others.
	ns := createNamespace(t, clusters[0])
	for _, c := range clusters[1:] {
		if _, err := clientset(t, c).CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster %s sees namespace %s of cluster %s (err %v)", c.Name(), ns, clusters[0].Name(), err)
		}
	}
	if len(pids) != 6 {
		t.Fatalf("pids = %v, want etcd and kube-apiserver for each of 3 clusters", pids)
	}
	for _, pid := range pids {
		if !Alive(pid) {
			t.Fatalf("pid %d not running before Stop", pid)
		}
	}
	dirs := []string{}
	for _, c := range clusters {
		dirs = append(dirs, c.Dir())
		if err := c.Stop(); err != nil {
			t.Errorf("stop %s: %v", c.Name(), err)
		}
	}
	for _, pid := range pids {
		if Alive(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster dir %s left behind (err %v)", d, err)
		}
	}
}

func TestDetachedClusterStopsFromState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	c, err := Start(t.Context(), Options{Name: "dev", Dir: dir, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kubeconfig != c.KubeconfigPath() || len(st.PIDs) != 2 || len(st.StartTimes) != 2 {
		t.Fatalf("state = %+v, want kubeconfig %s, 2 pids and their start times", st, c.KubeconfigPath())
	}
	// StopDetached itself waits until every process is gone (init reaps them; the
	// bound fits a loaded machine) and only then removes the state.
	if err := StopDetached(dir, 10*time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, pid := range st.PIDs {
		if Alive(pid) {
			t.Errorf("pid %d still running after StopDetached returned", pid)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s left behind", dir)
	}
}

// TestDetachedClusterWithRelativeTestbinStops: a cluster started with a relative
// testbin directory (OUTPOST_TESTBIN_DIR=bin, as typed from the repository root) is
// really stopped by StopDetached; it used to be taken as gone because the recorded
// binary paths were relative while /proc/<pid>/exe is absolute, and its state was
// removed with kube-apiserver still running.
func TestDetachedClusterWithRelativeTestbinStops(t *testing.T) {
	abs, err := DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || filepath.IsAbs(rel) {
		t.Skipf("no relative path from %s to %s", wd, abs)
	}
	dir := filepath.Join(t.TempDir(), "rel")
	if _, err := Start(t.Context(), Options{Name: "rel", Dir: dir, Detach: true, BinDir: rel}); err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Binaries {
		if !filepath.IsAbs(b) {
			t.Errorf("recorded binary %s is not absolute", b)
		}
	}
	if err := StopDetached(dir, 10*time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, pid := range st.PIDs {
		if Alive(pid) {
			t.Errorf("pid %d still running after StopDetached: the cluster was not stopped", pid)
			_ = killGroup(pid, syscall.SIGKILL)
		}
	}
}

// TestStopDetachedKeepsStateWhileProcessesRun: while a process of the cluster's
// process groups still runs after the stop, StopDetached fails naming it and keeps the
// state, the only way to find it again. Here the recorded leader's start time does not
// match (so it is not signalled, as for a reused pid), but a live process is in its group.
func TestStopDetachedKeepsStateWhileProcessesRun(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	info, err := readProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	st := State{Name: "stubborn", PIDs: []int{cmd.Process.Pid}, Binaries: []string{cmd.Path}, StartTimes: []uint64{info.start + 1}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	err = StopDetached(dir, time.Second, 500*time.Millisecond)
	var sre *StillRunningError
	if !errors.As(err, &sre) || !slices.Contains(sre.PIDs, cmd.Process.Pid) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("StopDetached = %v, want a StillRunningError naming pid %d and the kept dir", err, cmd.Process.Pid)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		t.Errorf("state removed while a process of the cluster runs: %v", err)
	}
}

func TestBrokenTestbinGivesClearError(t *testing.T) {
	real, err := DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		prepare func(t *testing.T, dir string)
		want    []string
	}{
		"missing etcd": {
			prepare: func(t *testing.T, dir string) {},
			want:    []string{filepath.Join("etcd-"+EtcdVersion, "etcd"), "not found", "make testbin"},
		},
		"corrupt etcd": {
			prepare: func(t *testing.T, dir string) {
				writeExec(t, filepath.Join(dir, "etcd-"+EtcdVersion, "etcd"), []byte("\x7fELF garbage"))
			},
			want: []string{filepath.Join("etcd-"+EtcdVersion, "etcd"), "does not run", "make testbin"},
		},
		"wrong apiserver version": {
			prepare: func(t *testing.T, dir string) {
				link(t, filepath.Join(real, "etcd-"+EtcdVersion, "etcd"), filepath.Join(dir, "etcd-"+EtcdVersion, "etcd"))
				writeExec(t, filepath.Join(dir, "k8s-"+KubernetesVersion, "kube-apiserver"), []byte("#!/bin/sh\necho Kubernetes v1.20.0\n"))
			},
			want: []string{"kube-apiserver", "v1.20.0", KubernetesVersion, "make testbin"},
		},
		"missing kwok in full mode": {
			prepare: func(t *testing.T, dir string) {
				link(t, filepath.Join(real, "etcd-"+EtcdVersion), filepath.Join(dir, "etcd-"+EtcdVersion))
				link(t, filepath.Join(real, "k8s-"+KubernetesVersion), filepath.Join(dir, "k8s-"+KubernetesVersion))
			},
			want: []string{"kwok", "make testbin"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tc.prepare(t, dir)
			start := time.Now()
			_, err := Start(t.Context(), Options{Name: "broken", BinDir: dir, Mode: ModeFull})
			var missing *MissingBinaryError
			if !errors.As(err, &missing) {
				t.Fatalf("err = %v, want *MissingBinaryError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %s to report a broken binary", d)
			}
		})
	}
}

func writeExec(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls check until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s: %v", what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
