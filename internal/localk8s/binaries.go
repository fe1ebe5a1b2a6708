package localk8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Pinned versions of the testbed. They must match the helper modules in hack/testbin,
// which `make testbin` builds.
const (
	// KubernetesVersion is the version of kube-apiserver, kube-controller-manager,
	// kube-scheduler and kubectl.
	KubernetesVersion = "v1.37.2"
	// EtcdVersion is the version of etcd.
	EtcdVersion = "v3.6.16"
	// KwokVersion is the version of kwok.
	KwokVersion = "v0.8.0"
)

// BinDirEnv names the environment variable that overrides where the testbed binaries
// are looked up (the directory that holds k8s-*/, etcd-*/ and kwok-*/).
const BinDirEnv = "OUTPOST_TESTBIN_DIR"

// Binaries are the absolute paths of the testbed's programs and files.
type Binaries struct {
	// Etcd is the etcd server.
	Etcd string
	// APIServer is kube-apiserver.
	APIServer string
	// ControllerManager is kube-controller-manager.
	ControllerManager string
	// Scheduler is kube-scheduler.
	Scheduler string
	// Kubectl is kubectl.
	Kubectl string
	// Kwok is the kwok controller.
	Kwok string
	// KwokStages is the YAML file of kwok Stage definitions (node and pod lifecycles).
	KwokStages string
	// Kubelet is the kubelet of real nodes; empty unless the cluster has some.
	Kubelet string
	// KubeProxy is kube-proxy, which real nodes need for Services; empty unless the
	// cluster has real nodes.
	KubeProxy string
	// Pause is the pod sandbox program of real nodes (internal/ociimage/pause); empty
	// unless the cluster has real nodes.
	Pause string
}

// MissingBinaryError reports a testbed binary that is absent or does not run.
type MissingBinaryError struct {
	// Path is the binary's path.
	Path string
	// Reason says what is wrong with it.
	Reason string
	// Target is the make target that builds it; "" means testbin.
	Target string
}

func (e *MissingBinaryError) Error() string {
	target := e.Target
	if target == "" {
		target = "testbin"
	}
	return fmt.Sprintf("testbed binary %s: %s; run `make %s` to build it (or set %s)", e.Path, e.Reason, target, BinDirEnv)
}

// DefaultBinDir returns the directory holding the testbed binaries: $OUTPOST_TESTBIN_DIR
// if set, else bin/ at the root of the Outpost module containing the working directory.
func DefaultBinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return filepath.Abs(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the testbed: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/outpost-gitops/outpost\n")) {
			return filepath.Join(dir, "bin"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("finding the testbed: no Outpost go.mod above %s; set %s", wd, BinDirEnv)
		}
	}
}

// LocateBinaries returns the testbed binaries under binDir ("" means DefaultBinDir) and
// checks that each one exists and runs, reporting the version it was pinned to. A
// missing or corrupt binary yields a *MissingBinaryError naming it. full selects the
// components of ModeFull as well as those of ModeAPI.
func LocateBinaries(ctx context.Context, binDir string, full bool) (*Binaries, error) {
	if binDir == "" {
		d, err := DefaultBinDir()
		if err != nil {
			return nil, err
		}
		binDir = d
	}
	// Absolute and symlink-free: the paths are recorded for detached clusters and
	// compared with /proc/<pid>/exe, which is both.
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return nil, fmt.Errorf("testbed directory %s: %w", binDir, err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	binDir = abs
	k8s := filepath.Join(binDir, "k8s-"+KubernetesVersion)
	kwok := filepath.Join(binDir, "kwok-"+KwokVersion)
	b := &Binaries{
		Etcd:              filepath.Join(binDir, "etcd-"+EtcdVersion, "etcd"),
		APIServer:         filepath.Join(k8s, "kube-apiserver"),
		ControllerManager: filepath.Join(k8s, "kube-controller-manager"),
		Scheduler:         filepath.Join(k8s, "kube-scheduler"),
		Kubectl:           filepath.Join(k8s, "kubectl"),
		Kwok:              filepath.Join(kwok, "kwok"),
		KwokStages:        filepath.Join(kwok, "stages.yaml"),
	}
	checks := []struct{ path, version string }{
		{b.Etcd, EtcdVersion},
		{b.APIServer, KubernetesVersion},
	}
	if full {
		checks = append(checks,
			struct{ path, version string }{b.ControllerManager, KubernetesVersion},
			struct{ path, version string }{b.Scheduler, KubernetesVersion},
			struct{ path, version string }{b.Kwok, KwokVersion},
		)
	}
	for _, c := range checks {
		if err := checkBinary(ctx, c.path, c.version); err != nil {
			return nil, err
		}
	}
	if full {
		if st, err := os.Stat(b.KwokStages); err != nil || st.Size() == 0 {
			return nil, &MissingBinaryError{Path: b.KwokStages, Reason: "kwok stage file missing or empty"}
		}
	}
	return b, nil
}

// locateRealNodeBinaries fills in the kubelet, kube-proxy and pause binaries of real
// nodes, which `make testbin-real-nodes` builds, and checks them.
func locateRealNodeBinaries(ctx context.Context, b *Binaries) error {
	k8s := filepath.Dir(b.APIServer)
	b.Kubelet = filepath.Join(k8s, "kubelet")
	b.KubeProxy = filepath.Join(k8s, "kube-proxy")
	b.Pause = filepath.Join(filepath.Dir(k8s), "pause", "pause")
	for _, p := range []string{b.Kubelet, b.KubeProxy} {
		if err := checkBinary(ctx, p, KubernetesVersion); err != nil {
			var missing *MissingBinaryError
			if errors.As(err, &missing) {
				missing.Target = "testbin-real-nodes"
			}
			return err
		}
	}
	if st, err := os.Stat(b.Pause); err != nil || st.Mode()&0o111 == 0 {
		return &MissingBinaryError{Path: b.Pause, Reason: "the pause program of real nodes is missing", Target: "testbin-real-nodes"}
	}
	return nil
}

// checkBinary runs `path --version` (bounded in time) and checks that the output names
// the pinned version, so a truncated, foreign or stale binary is caught before start.
func checkBinary(ctx context.Context, path, version string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &MissingBinaryError{Path: path, Reason: "not found"}
	case err != nil:
		return &MissingBinaryError{Path: path, Reason: err.Error()}
	case st.IsDir() || st.Mode()&0o111 == 0:
		return &MissingBinaryError{Path: path, Reason: "not an executable file"}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return &MissingBinaryError{Path: path, Reason: fmt.Sprintf("does not run (%v)", err)}
	}
	if !strings.Contains(string(out), strings.TrimPrefix(version, "v")) {
		return &MissingBinaryError{Path: path, Reason: fmt.Sprintf("reports %q, want version %s", firstLine(out), version)}
	}
	return nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
