//go:build unix

// Package chromiumtest runs Debian's headless Chromium for tests of the dashboard:
// the DOM as the browser built it (--dump-dom) and screenshots. A missing Chromium
// fails the test with the command that installs it: .ci/run installs it in CI, so
// the browser tests never skip silently.
package chromiumtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// Path returns the Chromium binary or fails the test.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the dashboard test and was not found in PATH. " +
		"Install it with: apt-get update && apt-get install -y chromium  (.ci/run does this in CI)")
	return ""
}

// ArtifactDir is where screenshots go: the repository's bin/ when OUTPOST_ARTIFACTS is
// set, else outpost-test-artifacts/ in the system's temporary directory. Both outlive
// the test, so the path it prints can be opened; each run overwrites the files.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "outpost-test-artifacts")
	if os.Getenv("OUTPOST_ARTIFACTS") != "" {
		bin, err := testenv.DefaultBinDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifact directory: %v", err)
	}
	return dir
}

// Headless runs Chromium on url with extra arguments and returns its standard output.
// Each run gets a fresh profile and its own process group, killed on timeout so no
// renderer outlives the test.
func Headless(t testing.TB, chromium, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,900",
	}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium %s: no result within 2 minutes\nstderr:\n%s", strings.Join(extra, " "), stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// Screenshot saves a PNG of url to path and checks it is one.
func Screenshot(t testing.TB, chromium, url, path string) {
	t.Helper()
	Headless(t, chromium, url, "--screenshot="+path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 {
		t.Fatalf("screenshot of %s: %s is not a plausible PNG (%d bytes)", url, path, len(b))
	}
}
