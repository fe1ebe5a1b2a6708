package main

import (
	"os/exec"
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

// TestOutpostLinksNoTesting: the production binary (hub, agent, CLI, `outpost dev`)
// links no test support. `outpost dev cluster` and the demo run their clusters with
// internal/localk8s, not internal/testenv.
func TestOutpostLinksNoTesting(t *testing.T) {
	for _, tags := range []string{"", "grpcnotrace"} {
		out, err := exec.Command("go", "list", "-deps", "-tags="+tags, ".").Output()
		if err != nil {
			t.Fatalf("go list -deps -tags=%q: %v", tags, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 100 {
			t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
		}
		for _, d := range deps {
			for _, f := range testSupport {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("outpost (tags %q) links %s", tags, d)
				}
			}
		}
	}
}
