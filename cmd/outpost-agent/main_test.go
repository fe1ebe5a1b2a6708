package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNeitherHubNorCLI: the agent binary exists to stay small; it must not link
// the hub (and its SQLite store), the CLI, test support (internal/testenv), Helm's
// plugin runtime (WASM: wazero, extism), its SQL release storage (lib/pq,
// sql-migrate) or the Helm packages that bring them (action, getter, repo, plugin),
// or, built with -tags grpcnotrace as released, golang.org/x/net/trace.
//
// Helm's chart engine, which the agent renders charts with, links html/template
// (sprig → spf13/cast) and testing (helm's internal/version); text/template's
// method lookups already turn off the linker's dead-code elimination of methods, so
// html/template costs no more. Both are allowed for that reason only.
func TestLinksNeitherHubNorCLI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags=grpcnotrace", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	forbidden := []string{
		"github.com/outpost-gitops/outpost/hub", "modernc.org/sqlite", "github.com/outpost-gitops/outpost/cmd/outpost/cli",
		"golang.org/x/net/trace", "github.com/outpost-gitops/outpost/internal/testenv",
		"github.com/tetratelabs/wazero", "github.com/extism", "github.com/lib/pq", "github.com/rubenv/sql-migrate",
		"helm.sh/helm/v4/pkg/action", "helm.sh/helm/v4/pkg/getter", "helm.sh/helm/v4/pkg/repo",
		"helm.sh/helm/v4/pkg/plugin", "helm.sh/helm/v4/internal/plugin", "helm.sh/helm/v4/pkg/storage",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("outpost-agent links %s", d)
			}
		}
	}
}
