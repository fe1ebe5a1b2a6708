package kindconfigs

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// wantRoles is the role label each cluster's nodes must carry.
var wantRoles = map[string]string{
	"hub.yaml":  "hub",
	"dev.yaml":  "spoke",
	"prod.yaml": "spoke",
}

// TestKindConfigsDecode decodes every kind config strictly with kind's v1alpha4 API (as
// `kind create cluster --config` does) and checks what the e2e suite relies on: distinct
// names and API ports, and node role labels.
func TestKindConfigsDecode(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(wantRoles) {
		t.Fatalf("found %v, want exactly %d kind configs", files, len(wantRoles))
	}
	names := map[string]string{}
	ports := map[int32]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c kindv1alpha4.Cluster
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
			t.Errorf("%s: kind/apiVersion = %s/%s, want Cluster/kind.x-k8s.io/v1alpha4", f, c.Kind, c.APIVersion)
		}
		kindv1alpha4.SetDefaultsCluster(&c)
		if other, dup := names[c.Name]; dup {
			t.Errorf("%s: cluster name %q already used by %s", f, c.Name, other)
		}
		names[c.Name] = f
		if other, dup := ports[c.Networking.APIServerPort]; dup || c.Networking.APIServerPort == 0 {
			t.Errorf("%s: apiServerPort %d missing or already used by %s", f, c.Networking.APIServerPort, other)
		}
		ports[c.Networking.APIServerPort] = f
		for i, n := range c.Nodes {
			if n.Labels["outpost.dev/role"] != wantRoles[f] {
				t.Errorf("%s: nodes[%d] label outpost.dev/role = %q, want %q", f, i, n.Labels["outpost.dev/role"], wantRoles[f])
			}
		}
	}
}

// TestHubPortMatchesE2EKind checks that hack/e2e-kind.sh, which installs the hub's
// Service as a NodePort and points the suite at it, uses the port mapping of hub.yaml.
func TestHubPortMatchesE2EKind(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "hack", "e2e-kind.sh"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(script), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && (k == "HUB_NODEPORT" || k == "HUB_URL") {
			vars[k] = v
		}
	}
	u, err := url.Parse(vars["HUB_URL"])
	if err != nil || vars["HUB_NODEPORT"] == "" {
		t.Fatalf("hack/e2e-kind.sh: HUB_NODEPORT=%q HUB_URL=%q (%v)", vars["HUB_NODEPORT"], vars["HUB_URL"], err)
	}
	data, err := os.ReadFile("hub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c kindv1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		for _, m := range n.ExtraPortMappings {
			if strconv.Itoa(int(m.ContainerPort)) == vars["HUB_NODEPORT"] && strconv.Itoa(int(m.HostPort)) == u.Port() && m.ListenAddress == u.Hostname() {
				return
			}
		}
	}
	t.Errorf("hub.yaml maps no containerPort %s to %s:%s, which hack/e2e-kind.sh uses (HUB_NODEPORT, HUB_URL)", vars["HUB_NODEPORT"], u.Hostname(), u.Port())
}
