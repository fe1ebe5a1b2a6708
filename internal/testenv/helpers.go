package testenv

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// Cluster is a local control plane (localk8s.Cluster) with the test helpers.
type Cluster struct {
	*localk8s.Cluster
}

// Options configure a cluster (localk8s.Options).
type Options = localk8s.Options

// Mode is what a cluster runs (localk8s.Mode).
type Mode = localk8s.Mode

// Requests records a client's requests to a cluster (localk8s.Requests).
type Requests = localk8s.Requests

// The cluster modes and the testbed's names (see localk8s).
const (
	ModeAPI           = localk8s.ModeAPI
	ModeFull          = localk8s.ModeFull
	BinDirEnv         = localk8s.BinDirEnv
	KubernetesVersion = localk8s.KubernetesVersion
)

// Start starts a cluster (localk8s.Start).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := localk8s.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Cluster{Cluster: c}, nil
}

// FreeAddr returns a free loopback address (localk8s.FreeAddr).
func FreeAddr() (string, error) { return localk8s.FreeAddr() }

// DefaultBinDir is where the testbed binaries are (localk8s.DefaultBinDir).
func DefaultBinDir() (string, error) { return localk8s.DefaultBinDir() }

// GitCLI returns the git command for tests that run it (localk8s.GitCLI).
func GitCLI() (string, error) { return localk8s.GitCLI() }

// GitPath returns the git command or "" (localk8s.GitPath).
func GitPath() string { return localk8s.GitPath() }

// Alive reports whether a process runs (localk8s.Alive).
func Alive(pid int) bool { return localk8s.Alive(pid) }

// ReadState reads a detached cluster's state (localk8s.ReadState).
func ReadState(dir string) (*localk8s.State, error) { return localk8s.ReadState(dir) }

// StopDetached stops a detached cluster from its state (localk8s.StopDetached).
func StopDetached(dir string, grace, verify time.Duration) error {
	return localk8s.StopDetached(dir, grace, verify)
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// CreateNamespace creates a namespace named after the test, unique in the cluster, and
// deletes it when the test ends. In ModeAPI no controller finalizes namespaces, so the
// deletion only marks it Terminating; names never collide because of the suffix.
func (c *Cluster) CreateNamespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	name := base + "-" + localk8s.RandomSuffix()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// RunMain is for a package's TestMain: it starts one cluster for the whole package,
// hands it to set, runs the tests, stops the cluster and exits with the tests' code.
// The startup time is printed. When the tests fail, the cluster's files (component
// logs) are kept and their path printed.
func RunMain(m *testing.M, opts Options, set func(*Cluster)) {
	os.Exit(runMain(m, opts, set))
}

func runMain(m *testing.M, opts Options, set func(*Cluster)) int {
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	fmt.Printf("testenv: cluster %s (%s mode) started in %s\n", c.Name(), c.Mode(), c.StartupDuration().Round(time.Millisecond))
	set(c)
	code := m.Run()
	if code != 0 && c.KeepFiles() {
		fmt.Printf("testenv: tests failed; cluster files and logs kept in %s\n", c.Dir())
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
