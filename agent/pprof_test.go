package agent

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// freeLoopback returns a loopback address nothing listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestServesPprofOnlyWhenAsked: --pprof-listen serves the runtime profiles on their
// own address, and /metrics' listener does not serve them.
func TestServesPprofOnlyWhenAsked(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	metricsAddr, pprofAddr := freeLoopback(t), freeLoopback(t)
	startAgent(t, repo.url(), ns, func(c *Config) { c.ListenAddr, c.PprofAddr = metricsAddr, pprofAddr })
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://" + pprofAddr + "/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "HeapInuse") {
		t.Errorf("pprof heap profile: %d, %.200q", code, body)
	}
	if code, _ := get("http://" + metricsAddr + "/debug/pprof/heap"); code == http.StatusOK {
		t.Errorf("the metrics listener serves /debug/pprof/heap")
	}
}

// TestPprofAddressValidated: a malformed --pprof-listen is a configuration error
// naming the flag.
func TestPprofAddressValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClusterName, cfg.GitURL, cfg.CacheDir, cfg.PprofAddr = "dev", "file:///srv/fleet", t.TempDir(), "localhost"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "--pprof-listen (OUTPOST_PPROF_LISTEN)") {
		t.Fatalf("Validate() = %v, want an error naming --pprof-listen", err)
	}
}
