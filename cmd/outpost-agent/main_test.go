package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNeitherHubNorCLI: the agent binary exists to stay small; it must not link
// the hub (and its SQLite store), the CLI, test support (testing, internal/testenv),
// or, built with -tags grpcnotrace as released, golang.org/x/net/trace (whose
// html/template use turns off the linker's dead-code elimination of methods).
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
		"github.com/outpost-gitops/outpost/hub", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/outpost-gitops/outpost/cmd/outpost/cli",
		"golang.org/x/net/trace", "html/template",
		"testing", "github.com/outpost-gitops/outpost/internal/testenv", "github.com/outpost-gitops/outpost/internal/pgtest",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("outpost-agent links %s", d)
			}
		}
	}
}
