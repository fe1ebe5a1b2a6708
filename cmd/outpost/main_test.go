package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// testSupport are the packages only tests may link: the standard library's testing
// (it registers its -test.* flags and brings its runner) and Outpost's test helpers.
var testSupport = []string{
	"testing",
	"github.com/outpost-gitops/outpost/internal/testenv",
	"github.com/outpost-gitops/outpost/internal/gittest",
	"github.com/outpost-gitops/outpost/internal/hubtest",
	"github.com/outpost-gitops/outpost/internal/chromiumtest",
	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest",
}

// testingImporters may import the standard library's testing: Helm's chart packages
// (linked by its chart engine) call testing.Testing(); importing testing registers no
// -test.* flag (testing.Init does, which only a test binary calls).
var testingImporters = []string{"helm.sh/helm/v4/internal/version", "helm.sh/helm/v4/pkg/chart/common"}

// TestOutpostLinksNoTesting: the production binary (hub, agent, CLI, `outpost dev`)
// links no test support. `outpost dev cluster` and the demo run their clusters with
// internal/localk8s, not internal/testenv.
func TestOutpostLinksNoTesting(t *testing.T) {
	for _, tags := range []string{"", "grpcnotrace"} {
		out, err := exec.Command("go", "list", "-deps", "-tags="+tags, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
		if err != nil {
			t.Fatalf("go list -deps -tags=%q: %v", tags, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 100 {
			t.Fatalf("go list -deps listed %d packages: %q", len(lines), out)
		}
		for _, line := range lines {
			fields := strings.Fields(line)
			d := fields[0]
			for _, f := range testSupport {
				if f == "testing" {
					continue // checked by importer below
				}
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("outpost (tags %q) links %s", tags, d)
				}
			}
			if slices.Contains(fields[1:], "testing") && !slices.Contains(testingImporters, d) {
				t.Errorf("outpost (tags %q): %s imports testing", tags, d)
			}
		}
	}
}
