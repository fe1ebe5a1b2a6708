package localk8s

import (
	"os"
	"os/exec"
)

// GitEnv names the variable through which `make test` gives tests the real git
// binary: during the suite a fake git that records every call is first on PATH, to
// prove that no production code (kustomize rendering above all) executes git. Tests
// that use the git CLI as a reference client get it through GitCLI.
const GitEnv = "OUTPOST_TEST_GIT"

// GitCLI returns the git binary for tests: $OUTPOST_TEST_GIT, else git on PATH.
func GitCLI() (string, error) {
	if p := os.Getenv(GitEnv); p != "" {
		return p, nil
	}
	return exec.LookPath("git")
}

// GitPath is GitCLI for callers that checked it already: "git" when there is none.
func GitPath() string {
	p, err := GitCLI()
	if err != nil {
		return "git"
	}
	return p
}
