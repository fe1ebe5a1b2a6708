package localk8s

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outpost-gitops/outpost/internal/ociimage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Real nodes: a kubelet with its own containerd (runc, a CNI bridge) per node, on this
// host. Settings that this machine's hybrid cgroup v1 layout and capability set need,
// found by running them (docs/real-nodes.md explains each):
//   - kubelet: cgroupDriver cgroupfs (no systemd), failCgroupV1 false (1.35+ refuses
//     cgroup v1 otherwise), failSwapOn false, cgroupRoot a per-node cgroup created in
//     every v1 hierarchy beforehand (the kubelet requires it to exist; cpuset copied
//     from the root so children can hold tasks);
//   - containerd (CRI): restrict_oom_score_adj true: without CAP_SYS_RESOURCE the
//     sandbox's oom_score_adj -998 is refused ("can't get final child's PID from
//     pipe: EOF" from runc, "failed to update /proc/self/oom_score_adj: Permission
//     denied" in its debug log); netns_mounts_under_state_dir so that every mount of a
//     node lives under its directory and Stop can find it.
//
// Real nodes share the host's network namespace (bridges, routes, kube-proxy's nftables
// table "kube-proxy"), so one cluster with real nodes runs per host at a time: Start
// takes realNodeLock.

const (
	// realNodeLock serialises clusters with real nodes on one host.
	realNodeLock = "/run/outpost-real-nodes.lock"
	// PauseImage is the pod sandbox image of the real nodes, assembled from the pause
	// binary of the testbed (ociimage.Pause) and imported into each containerd.
	PauseImage = "outpost.local/pause:testbed"
	// realNodePodCIDR holds every real node's pod subnet, 10.244.<n>.0/24.
	realNodePodCIDR = "10.244.0.0/16"
	// cniBinDir is where Debian's containernetworking-plugins installs the plugins.
	cniBinDir = "/usr/lib/cni"
)

// realNodeTools returns the host programs a real node runs and their Debian packages
// (see `hack/deps.sh real-nodes`).
func realNodeTools() []struct{ name, pkg string } {
	return []struct{ name, pkg string }{
		{"containerd", "containerd"},
		{"containerd-shim-runc-v2", "containerd"},
		{"ctr", "containerd"},
		{"runc", "runc"},
		{"ip", "iproute2"},
		{"nft", "nftables"},
	}
}

// realNode is one kubelet with its containerd.
type realNode struct {
	index      int
	name       string
	dir        string
	socket     string // containerd's CRI socket
	bridge     string // the CNI bridge, outpost-br<n>
	gateway    string // the bridge's address, 10.244.<n>.1
	subnet     string // 10.244.<n>.0/24
	cgroupRoot string // /outpost-real-node-<n>
	kubelet    int    // the kubelet's port
	containerd *process
}

// realNodeName names real node n.
func realNodeName(n int) string { return fmt.Sprintf("real-node-%d", n) }

// checkRealNodeHost reports what this host lacks for real nodes: root, the tools of
// realNodeTools and the CNI plugins.
func checkRealNodeHost() error {
	if os.Geteuid() != 0 {
		return errors.New("real nodes need root (containerd, runc, cgroups, bridges)")
	}
	var missing []string
	for _, t := range realNodeTools() {
		if _, err := exec.LookPath(t.name); err != nil {
			missing = append(missing, t.name+" (Debian package "+t.pkg+")")
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, p)+" (Debian package containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("real nodes: missing %s; run `hack/deps.sh real-nodes` as root", strings.Join(missing, ", "))
	}
	return nil
}

// lockRealNodes takes the host-wide lock of real-node clusters, or says who holds it.
func lockRealNodes() (*os.File, error) {
	f, err := os.OpenFile(realNodeLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("real nodes: lock %s: %w", realNodeLock, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(realNodeLock)
		f.Close()
		return nil, fmt.Errorf("real nodes: another cluster with real nodes runs on this host (lock %s held: %s); one at a time, they share the host's network", realNodeLock, strings.TrimSpace(string(holder)))
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "pid %d\n", os.Getpid())
	return f, nil
}

// prepareRealNodes creates each node's bridge with its gateway address (the apiserver
// advertises node 0's, which pods reach without forwarding) and cgroup root.
func (c *Cluster) prepareRealNodes(ctx context.Context) error {
	for i := range c.opts.RealNodes {
		n := &realNode{
			index:      i,
			name:       realNodeName(i),
			dir:        filepath.Join(c.dir, realNodeName(i)),
			bridge:     fmt.Sprintf("outpost-br%d", i),
			gateway:    fmt.Sprintf("10.244.%d.1", i),
			subnet:     fmt.Sprintf("10.244.%d.0/24", i),
			cgroupRoot: fmt.Sprintf("/outpost-real-node-%d", i),
		}
		n.socket = filepath.Join(n.dir, "containerd.sock")
		c.realNodes = append(c.realNodes, n)
		if err := os.MkdirAll(filepath.Join(n.dir, "cni"), 0o700); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		// A bridge left by a killed run is replaced.
		_ = run(ctx, "ip", "link", "delete", n.bridge)
		if err := run(ctx, "ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		if err := run(ctx, "ip", "addr", "add", n.gateway+"/24", "dev", n.bridge); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		if err := run(ctx, "ip", "link", "set", n.bridge, "up"); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		if err := createCgroupRoot(n.cgroupRoot); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	return nil
}

// startRealNodes starts each node's containerd, imports the pause image and the
// cluster's images, starts its kubelet, then one kube-proxy for the host, and waits
// for the nodes to be Ready.
func (c *Cluster) startRealNodes(ctx context.Context) error {
	pauseArchive := filepath.Join(c.dir, "pause-image.tar")
	img, err := ociimage.Build(ociimage.Pause(c.bins.Pause))
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if err := ociimage.WriteArchive(pauseArchive, PauseImage, img); err != nil {
		return err
	}
	ports, err := freePorts(2*len(c.realNodes) + 2)
	if err != nil {
		return err
	}
	for i, n := range c.realNodes {
		if err := c.startContainerd(ctx, n); err != nil {
			return err
		}
		if err := n.importImage(ctx, pauseArchive); err != nil {
			return err
		}
		n.kubelet = ports[2*i]
		if err := c.startKubelet(n, ports[2*i+1]); err != nil {
			return err
		}
	}
	proxy, err := c.start("kube-proxy", c.bins.KubeProxy,
		"--kubeconfig="+c.kubeconfig,
		"--proxy-mode=nftables",
		"--hostname-override="+c.realNodes[0].name,
		"--cluster-cidr="+realNodePodCIDR,
		"--masquerade-all", // replies from a pod on the same bridge come back through the host
		"--conntrack-max-per-core=0",
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(ports[len(ports)-2]),
		"--healthz-bind-address=127.0.0.1:"+strconv.Itoa(ports[len(ports)-1]),
	)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	for _, n := range c.realNodes {
		kubelet := c.procByName("kubelet-" + n.name)
		if err := c.waitFor(ctx, kubelet, func(ctx context.Context) error { return nodeReady(ctx, cs, n.name) }); err != nil {
			return err
		}
	}
	return proxy.exitedError()
}

// startContainerd writes the node's containerd configuration and starts it.
func (c *Cluster) startContainerd(ctx context.Context, n *realNode) error {
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "outpost-%[1]s",
  "plugins": [
    {"type": "bridge", "bridge": %[2]q, "isGateway": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %[3]q, "gateway": %[4]q}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %[5]q}},
    {"type": "loopback"}
  ]
}
`, n.name, n.bridge, n.subnet, n.gateway, filepath.Join(n.dir, "ipam"))
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "10-outpost.conflist"), []byte(cni), 0o600); err != nil {
		return fmt.Errorf("%s: CNI config: %w", n.name, err)
	}
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[8]q
    conf_dir = %[9]q
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"),
		n.socket, n.socket+".ttrpc", filepath.Join(n.dir, "containerd", "opt"), PauseImage,
		filepath.Join(n.dir, "runc"), cniBinDir, filepath.Join(n.dir, "cni"))
	cfgPath := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("%s: containerd config: %w", n.name, err)
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	p, err := c.start("containerd-"+n.name, bin, "--config="+cfgPath)
	if err != nil {
		return err
	}
	n.containerd = p
	return c.waitFor(ctx, p, func(ctx context.Context) error { return n.ctr(ctx, "version") })
}

// startKubelet writes the node's kubelet configuration and starts it.
func (c *Cluster) startKubelet(n *realNode, healthz int) error {
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%[2]s
address: 127.0.0.1
port: %[3]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[4]d
podLogsDir: %[5]s
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
`, n.cgroupRoot, n.socket, n.kubelet, healthz, filepath.Join(n.dir, "pod-logs"))
	cfgPath := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("%s: kubelet config: %w", n.name, err)
	}
	// Without iptables on its PATH the kubelet leaves the host's firewall alone (it
	// would add KUBE-FIREWALL and canary chains that outlive it); nothing here needs them.
	_, err := c.startWithEnv("kubelet-"+n.name, []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, c.bins.Kubelet,
		"--config="+cfgPath,
		"--kubeconfig="+c.kubeconfig,
		"--root-dir="+filepath.Join(n.dir, "kubelet"),
		"--hostname-override="+n.name,
		"--node-ip=127.0.0.1", // the apiserver reaches the kubelet (logs, exec) on loopback
		"--node-labels=outpost.dev/real-node=true",
	)
	return err
}

// ImportImage imports an image archive (docker-save or OCI tarball, e.g. written by
// ociimage.WriteArchive) into every real node's containerd, for pods with
// imagePullPolicy IfNotPresent or Never.
func (c *Cluster) ImportImage(ctx context.Context, archive string) error {
	if len(c.realNodes) == 0 {
		return fmt.Errorf("cluster %s: importing %s: the cluster has no real nodes", c.opts.Name, archive)
	}
	for _, n := range c.realNodes {
		if err := n.importImage(ctx, archive); err != nil {
			return err
		}
	}
	return nil
}

// RealNodes returns the names of the cluster's real nodes.
func (c *Cluster) RealNodes() []string {
	names := make([]string, 0, len(c.realNodes))
	for _, n := range c.realNodes {
		names = append(names, n.name)
	}
	return names
}

// KillContainer sends SIGKILL to every process of a container on a real node (a
// crash, as the OOM killer would end it: no SIGTERM, no clean shutdown); the kubelet
// then restarts it as the pod's restartPolicy says. containerID is the pod status's
// "containerd://<id>".
func (c *Cluster) KillContainer(ctx context.Context, node, containerID string) error {
	id, ok := strings.CutPrefix(containerID, "containerd://")
	if !ok {
		return fmt.Errorf("cluster %s: container %q: not a containerd container ID", c.opts.Name, containerID)
	}
	for _, n := range c.realNodes {
		if n.name == node {
			if err := n.ctr(ctx, "-n", "k8s.io", "tasks", "kill", "--all", "--signal", "SIGKILL", id); err != nil {
				return fmt.Errorf("%s: killing container %s: %w", node, id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("cluster %s: no real node %q", c.opts.Name, node)
}

func (n *realNode) importImage(ctx context.Context, archive string) error {
	if err := n.ctr(ctx, "-n", "k8s.io", "images", "import", "--no-unpack=false", archive); err != nil {
		return fmt.Errorf("%s: importing %s: %w", n.name, archive, err)
	}
	return nil
}

// ctr runs containerd's CLI against the node's containerd.
func (n *realNode) ctr(ctx context.Context, args ...string) error {
	return run(ctx, "ctr", append([]string{"--address", n.socket}, args...)...)
}

// procByName returns the cluster's process started under name, or nil.
func (c *Cluster) procByName(name string) *process {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// nodeReady returns nil when node name reports Ready.
func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("node %s not Ready", name)
}

// stopRealNodes cleans up after the kubelets and containerds have been stopped: it
// kills what runs in the nodes' cgroups and the nodes' shims, removes kube-proxy's
// nftables table, unmounts everything under the nodes' directories, and removes the
// bridges and cgroups. It runs even when Start failed half-way.
func (c *Cluster) stopRealNodes() error {
	if len(c.realNodes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, n := range c.realNodes {
		killCgroup(n.cgroupRoot)
		killShims(n.socket)
	}
	if c.bins.KubeProxy != "" {
		_ = run(ctx, c.bins.KubeProxy, "--cleanup", "--proxy-mode=nftables")
	}
	for _, n := range c.realNodes {
		if err := unmountUnder(n.dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
		}
		_ = run(ctx, "ip", "link", "delete", n.bridge)
		removeContainerLogLinks(n.dir)
		if err := removeCgroupRoot(n.cgroupRoot); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
		}
	}
	c.realNodes = nil
	if c.realNodeLock != nil {
		c.realNodeLock.Close()
		c.realNodeLock = nil
	}
	return errors.Join(errs...)
}

// cgroupV1Mounts returns the mount points of the host's cgroup v1 hierarchies.
func cgroupV1Mounts() ([]string, error) { return cgroupMounts(false) }

// cgroupMounts returns the mount points of the host's cgroup v1 hierarchies, and with
// v2 the cgroup2 one too (the hybrid layout's "unified", where runc also creates the
// containers' cgroups).
func cgroupMounts(v2 bool) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		// mountinfo: ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !(strings.HasPrefix(post, "cgroup ") || v2 && strings.HasPrefix(post, "cgroup2 ")) {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) >= 5 {
			out = append(out, fields[4])
		}
	}
	return out, nil
}

// createCgroupRoot creates the cgroup path in every v1 hierarchy, giving the cpuset
// one the root's CPUs and memory nodes (a new cpuset cgroup has none, and no task
// could join it or its children).
func createCgroupRoot(path string) error {
	mounts, err := cgroupV1Mounts()
	if err != nil {
		return fmt.Errorf("cgroup root %s: %w", path, err)
	}
	if len(mounts) == 0 {
		return fmt.Errorf("cgroup root %s: no cgroup v1 hierarchy mounted; real nodes support the hybrid (v1) layout only, see docs/real-nodes.md", path)
	}
	_ = removeCgroupRoot(path) // left by a killed run
	for _, m := range mounts {
		dir := filepath.Join(m, path)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup root: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("cgroup root: %w", err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the cgroup path and its children from every hierarchy,
// deepest first. Cgroups still holding tasks are an error.
func removeCgroupRoot(path string) error {
	mounts, err := cgroupMounts(true)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		root := filepath.Join(m, path)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for range 50 { // a killed task leaves its cgroup a moment later
				if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// killCgroup sends SIGKILL to every process in the cgroup path (any hierarchy lists
// them all; pids is used when mounted).
func killCgroup(path string) {
	mounts, err := cgroupMounts(true)
	if err != nil {
		return
	}
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, path), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

// killShims kills the containerd shims serving the containerd at socket: they leave
// containerd's process group, so stopping containerd does not end them.
func killShims(socket string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(string(args[0])), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if string(args[i]) == "-address" && string(args[i+1]) == socket {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// containerLogLinks is where the kubelet links every container's log (not
// configurable), to the log under its podLogsDir.
const containerLogLinks = "/var/log/containers"

// removeContainerLogLinks removes the links of containerLogLinks into dir.
func removeContainerLogLinks(dir string) {
	entries, _ := os.ReadDir(containerLogLinks)
	for _, e := range entries {
		p := filepath.Join(containerLogLinks, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			_ = os.Remove(p)
		}
	}
}

// unmountUnder unmounts every mount point below dir (the kubelet's volumes, the
// containers' root filesystems, the pods' network namespaces), deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// run runs a host command, returning its output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
