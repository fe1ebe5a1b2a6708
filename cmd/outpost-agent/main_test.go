package main

import (
	"os/exec"
	"slices"
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
// html/template costs no more. Both are allowed from those importers only.
func TestLinksNeitherHubNorCLI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags=grpcnotrace", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 100 {
		t.Fatalf("go list -deps listed %d packages: %q", len(lines), out)
	}
	var deps []string
	for _, line := range lines {
		fields := strings.Fields(line)
		deps = append(deps, fields[0])
		// Only Helm's chart packages may import testing (testing.Testing(); no
		// -test.* flag is registered), and only sprig (and its spf13/cast) html/template.
		for imp, allowed := range map[string][]string{
			"testing":       {"helm.sh/helm/v4/internal/version", "helm.sh/helm/v4/pkg/chart/common"},
			"html/template": {"github.com/spf13/cast", "github.com/Masterminds/sprig/v3"},
		} {
			if slices.Contains(fields[1:], imp) && !slices.Contains(allowed, fields[0]) {
				t.Errorf("outpost-agent: %s imports %s", fields[0], imp)
			}
		}
	}
	forbidden := []string{
		"github.com/outpost-gitops/outpost/hub", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/outpost-gitops/outpost/cmd/outpost/cli",
		"golang.org/x/net/trace", "github.com/outpost-gitops/outpost/internal/testenv", "github.com/outpost-gitops/outpost/internal/pgtest",
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
