package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/localk8s"
	"github.com/outpost-gitops/outpost/internal/ociimage"
	"github.com/outpost-gitops/outpost/manifests"
)

// realNodesEnv enables TestRealNodes (root, containerd, runc, CNI plugins and `make
// testbin-real-nodes`; docs/real-nodes.md).
const realNodesEnv = "OUTPOST_REAL_NODES"

// realNodesImage is the tag of the Outpost image assembled for TestRealNodes.
const realNodesImage = "outpost.local/outpost:e2e"

// TestRealNodes runs Outpost from its image on real kubelets: a local cluster with two
// real nodes (containerd, runc, a CNI bridge, kube-proxy) plays the hub's cluster and
// the spoke "dev". manifests/ is installed unmodified except the image reference (the
// kube fleet's operations, as on kind): the hub Deployment and the agent DaemonSet run
// as real containers, as uid 65532 on a read-only root filesystem, with their probes,
// the projected ServiceAccount token and the hub's volume. The agent registers with
// the hub over the pod network (the hub's Service through kube-proxy), syncs the
// sample apps from the suite's Git server, reports drift, and when the leader's pod is
// killed the other replica takes the Lease over and syncs the next change; when the
// new leader's container is SIGKILLed (a crash) the kubelet restarts it, a replica
// leads again and the next change syncs.
//
// What kwok cannot show: that the image starts, the processes pass their probes as
// the pod specs confine them, and the agent reaches the apiserver and the hub from a
// pod. The sample apps' nginx is a stand-in (ociimage.StandIn) as no registry is
// reachable here.
func TestRealNodes(t *testing.T) {
	if os.Getenv(realNodesEnv) == "" {
		t.Skipf("set %s=1 to run Outpost on real nodes (root, containerd, runc, CNI; docs/real-nodes.md)", realNodesEnv)
	}
	ctx := t.Context()
	start := time.Now()
	c, err := localk8s.Start(ctx, localk8s.Options{
		Name: "e2e-real", Mode: localk8s.ModeFull, RealNodes: 2, StartTimeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.KeepFiles()
			t.Logf("cluster files and logs kept in %s", c.Dir())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	t.Logf("cluster with real nodes %v up in %s", c.RealNodes(), time.Since(start).Round(time.Millisecond))
	importImages(t, c)

	rc := c.RESTConfig()
	cs := kubernetes.NewForConfigOrDie(rc)
	hubDataVolumes(t, cs, c.Dir())
	// The suite's Git server on node 0's bridge address, which every pod reaches.
	git := gittest.New(t, gittest.WithToken("e2e-git-token"), gittest.WithListenAddr(net.JoinHostPort("10.244.0.1", "0")))
	git.Commit(t, exampleFiles(t), "seed from examples/", "Ada <ada@example.com>")

	f := &realNodeFleet{t: t, rc: rc, git: git, ops: &kubeOps{hub: rc, spokes: map[string]*rest.Config{"dev": rc}, timeout: 3 * time.Minute}}
	t.Log("install the hub and the agent from manifests/ with the assembled image; configure the hub")
	must(t, f.ops.install(ctx, rc, manifests.Hub, realNodesImage))
	must(t, f.ops.install(ctx, rc, manifests.AgentCluster, realNodesImage))
	must(t, f.ops.configureHub(ctx, hubSettings{
		AdminTokens:     "Platform Team <platform@example.com>:" + adminToken + "\n",
		GitURL:          git.URL(),
		GitPassword:     git.Token(),
		GitPollInterval: "1s",
		ResetData:       true,
	}))
	svc, err := cs.CoreV1().Services(manifests.Namespace).Get(ctx, manifests.HubName, metav1.GetOptions{})
	must(t, err)
	// The hub's ClusterIP: kube-proxy forwards it for the suite on the host and for the
	// agents in their pods alike (no cluster DNS here).
	f.hubURL = "http://" + svc.Spec.ClusterIP
	must(t, waitReady(ctx, f.hubURL, time.Minute))
	hubPod := realPods(t, cs, "app.kubernetes.io/name="+manifests.HubName, 1)[0]
	t.Logf("hub pod %s Ready on %s (%s)", hubPod.Name, hubPod.Spec.NodeName, hubPod.Status.PodIP)

	s := &suite{t: t, fleet: f}
	api, err := hubapi.New(f.hubURL, adminToken, hubapi.Options{})
	must(t, err)
	t.Log("register dev; its agent starts with the token: two replicas, one leader")
	out, code := s.outpost("clusters", "add", "dev", "-o", "json")
	if code != 0 {
		t.Fatalf("outpost clusters add dev: exit %d: %s", code, out)
	}
	var reg apiv1.RegisterClusterResponse
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &reg); err != nil || reg.Token == "" {
		t.Fatalf("clusters add dev output %q: %v", out, err)
	}
	must(t, f.StartAgent(ctx, "dev", reg.Token))
	agents := realPods(t, cs, "app.kubernetes.io/name="+manifests.AgentName, 2)
	if agents[0].Spec.NodeName == agents[1].Spec.NodeName {
		t.Errorf("both agent pods on %s, want one per real node", agents[0].Spec.NodeName)
	}
	confined(t, map[string]int{"/usr/local/bin/outpost": 1, "/usr/local/bin/outpost-agent": 2})

	t.Log("the seeded apps sync: web (stand-in nginx) applied, healthy, reported")
	s.waitApp(api, "dev", "web", 2*time.Minute, synced("1.27.3"))
	leader := leaseHolder(t, cs, "")
	t.Logf("leader %s", leader)

	t.Log("kubectl scale web: drift reported at the hub")
	dev := kubernetes.NewForConfigOrDie(rc)
	_, err = dev.AppsV1().Deployments("web").UpdateScale(ctx, "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3},
	}, metav1.UpdateOptions{FieldManager: "kubectl"})
	must(t, err)
	s.waitApp(api, "dev", "web", time.Minute, func(a apiv1.AppState) bool {
		return len(a.Drift) == 1 && len(a.Drift[0].Fields) == 1 && a.Drift[0].Fields[0].Path == "spec.replicas" && a.Drift[0].Fields[0].Manager == "kubectl"
	})

	t.Log("kill the leader's pod: the other replica takes the Lease and syncs the next change")
	must(t, cs.CoreV1().Pods(manifests.Namespace).Delete(ctx, leader, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	killed := time.Now()
	next := leaseHolder(t, cs, leader)
	t.Logf("Lease taken over by %s %s after the kill", next, time.Since(killed).Round(time.Millisecond))
	if out, code := s.outpost("set", "web", "1.28.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("outpost set web 1.28.0: exit %d: %s", code, out)
	}
	s.waitApp(api, "dev", "web", 2*time.Minute, synced("1.28.0"))
	st, err := api.ClusterStatus(ctx, "dev")
	must(t, err)
	if st.Cluster.Agent.ID != next {
		t.Errorf("dev's reports come from agent %q, want the new leader %q", st.Cluster.Agent.ID, next)
	}
	// The DaemonSet replaces the killed pod: two agents again, on both nodes.
	agents = realPods(t, cs, "app.kubernetes.io/name="+manifests.AgentName, 2)

	t.Log("SIGKILL the new leader's container (a crash, no clean shutdown): the kubelet restarts it, a replica leads again, the next change syncs")
	var crashed corev1.Pod
	for _, p := range agents {
		if p.Name == next {
			crashed = p
		}
	}
	if crashed.Name == "" {
		t.Fatalf("the leader %s is not among the agent pods", next)
	}
	crashedAt := time.Now()
	must(t, c.KillContainer(ctx, crashed.Spec.NodeName, crashed.Status.ContainerStatuses[0].ContainerID))
	must(t, poll(ctx, "the crashed agent container restarted and Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(manifests.Namespace).Get(ctx, crashed.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.ContainerStatuses[0].RestartCount > crashed.Status.ContainerStatuses[0].RestartCount && realPodProblem(*p) == "", nil
	}))
	holder := leaseRenewedAfter(t, cs, crashedAt)
	t.Logf("Lease held by %s, renewed %s after the crash", holder, time.Since(crashedAt).Round(time.Millisecond))
	if out, code := s.outpost("set", "web", "1.29.0", "--cluster", "dev"); code != 0 {
		t.Fatalf("outpost set web 1.29.0: exit %d: %s", code, out)
	}
	s.waitApp(api, "dev", "web", 2*time.Minute, synced("1.29.0"))
}

// leaseRenewedAfter waits for the agent's Lease to be renewed after t0 and returns its
// holder.
func leaseRenewedAfter(t *testing.T, cs kubernetes.Interface, t0 time.Time) string {
	t.Helper()
	var holder string
	must(t, poll(t.Context(), "agent Lease renewed after "+t0.Format(time.RFC3339), 90*time.Second, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(manifests.Namespace).Get(ctx, manifests.AgentName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil {
			return false, nil
		}
		holder = *l.Spec.HolderIdentity
		return holder != "" && l.Spec.RenewTime.After(t0), nil
	}))
	return holder
}

// confined checks the processes of the image's binaries (argv[0] → how many) on this
// host, as the kernel sees them: uid and gid 65532, no capabilities, no_new_privs, a
// seccomp filter, a read-only root filesystem; what the pod specs of manifests/ ask.
func confined(t *testing.T, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	entries, err := os.ReadDir("/proc")
	must(t, err)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if _, ok := want[argv0]; !ok {
			continue
		}
		got[argv0]++
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		must(t, err)
		fields := map[string]string{}
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
		for k, v := range map[string]string{
			"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532",
			"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
		} {
			if fields[k] != v {
				t.Errorf("process %s (%s): %s %q, want %q", e.Name(), argv0, k, fields[k], v)
			}
		}
		mountinfo, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		must(t, err)
		rootRO := false
		for _, line := range strings.Split(string(mountinfo), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[4] == "/" {
				rootRO = strings.HasPrefix(f[5], "ro,") || f[5] == "ro"
			}
		}
		if !rootRO {
			t.Errorf("process %s (%s): root filesystem not read-only", e.Name(), argv0)
		}
	}
	for bin, n := range want {
		if got[bin] != n {
			t.Errorf("%d processes of %s on this host, want %d (one per pod)", got[bin], bin, n)
		}
	}
}

// realNodeFleet is the fleet of TestRealNodes: one cluster with real nodes is the
// hub's cluster and dev.
type realNodeFleet struct {
	t      *testing.T
	rc     *rest.Config
	git    *gittest.Server
	ops    *kubeOps
	hubURL string
}

// HubURL implements fleet.
func (f *realNodeFleet) HubURL() string { return f.hubURL }

// RESTConfig implements fleet.
func (f *realNodeFleet) RESTConfig(string) *rest.Config { return f.rc }

// Git implements fleet.
func (f *realNodeFleet) Git() *gittest.Server { return f.git }

// StartAgent implements fleet: the agent's Secrets and configuration, rolled out.
func (f *realNodeFleet) StartAgent(ctx context.Context, cluster, token string) error {
	return f.ops.configureAgent(ctx, agentSettings{
		Cluster: cluster, Token: token, HubURL: f.hubURL,
		GitURL: f.git.URL(), GitPassword: f.git.Token(), Interval: "1m",
	})
}

// RestartAgent implements fleet.
func (f *realNodeFleet) RestartAgent(ctx context.Context, cluster string) error {
	return f.ops.restartAgent(ctx, cluster)
}

// RestartHub implements fleet.
func (f *realNodeFleet) RestartHub(ctx context.Context) error {
	if err := f.ops.restartHub(ctx); err != nil {
		return err
	}
	return waitReady(ctx, f.hubURL, time.Minute)
}

// importImages assembles the Outpost image as the Dockerfile builds it (static
// binaries, CA certificates, nonroot) and the stand-ins of the sample app's nginx
// versions, and imports them into the real nodes' containerd.
func importImages(t *testing.T, c *localk8s.Cluster) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	bins, err := ociimage.BuildOutpost(ctx, "go", "..", dir, "e2e")
	must(t, err)
	spec, err := ociimage.Outpost(ociimage.OutpostOptions{Binaries: bins, Version: "e2e"})
	must(t, err)
	archives := map[string]ociimage.Spec{realNodesImage: spec}
	for _, v := range []string{"1.27.3", "1.28.0", "1.29.0"} {
		archives["docker.io/library/nginx:"+v] = ociimage.StandIn(c.Binaries().Pause)
	}
	for ref, spec := range archives {
		img, err := ociimage.Build(spec)
		must(t, err)
		archive := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		must(t, ociimage.WriteArchive(archive, ref, img))
		must(t, c.ImportImage(ctx, archive))
	}
}

// hubDataVolumes creates two hostPath PersistentVolumes owned by the hub's uid, for
// the claim of the install and the one configureHub's reset creates (no provisioner
// here; fsGroup does not apply to hostPath).
func hubDataVolumes(t *testing.T, cs kubernetes.Interface, dir string) {
	t.Helper()
	for i := range 2 {
		path := filepath.Join(dir, fmt.Sprintf("hub-data-%d", i))
		must(t, os.MkdirAll(path, 0o700))
		must(t, os.Chown(path, ociimage.NonrootUID, ociimage.NonrootUID))
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hub-data-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}},
			},
		}
		_, err := cs.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{})
		must(t, err)
	}
}

// realPods waits for n pods of selector, each Ready with its containers started by
// containerd on a real node, and returns them.
func realPods(t *testing.T, cs kubernetes.Interface, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	var why string
	err := poll(t.Context(), fmt.Sprintf("%d Ready pods %s on real nodes", n, selector), 2*time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(manifests.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		if len(pods) != n {
			why = fmt.Sprintf("%d pods", len(pods))
			return false, nil
		}
		for _, p := range pods {
			if why = realPodProblem(p); why != "" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v: %s", err, why)
	}
	return pods
}

// realPodProblem says why p is not a Ready pod running on a real node, or "".
func realPodProblem(p corev1.Pod) string {
	if !strings.HasPrefix(p.Spec.NodeName, "real-node-") {
		return fmt.Sprintf("pod %s on node %q, not a real node", p.Name, p.Spec.NodeName)
	}
	ready := false
	for _, c := range p.Status.Conditions {
		ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		return fmt.Sprintf("pod %s not Ready: %+v", p.Name, p.Status.ContainerStatuses)
	}
	for _, c := range p.Status.ContainerStatuses {
		if !strings.HasPrefix(c.ContainerID, "containerd://") || c.State.Running == nil {
			return fmt.Sprintf("pod %s container %s: %+v", p.Name, c.Name, c.State)
		}
	}
	return ""
}

// leaseHolder waits for the agent's Lease to be held by a replica other than not and
// returns it.
func leaseHolder(t *testing.T, cs kubernetes.Interface, not string) string {
	t.Helper()
	var holder string
	must(t, poll(t.Context(), "agent Lease held by a replica other than "+not, 90*time.Second, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(manifests.Namespace).Get(ctx, manifests.AgentName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder = *l.Spec.HolderIdentity
		return holder != "" && holder != not, nil
	}))
	return holder
}
