package chromiumtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runDeps runs hack/deps.sh with PATH holding only the fake programs in bin, and
// returns its exit code, output and the fake apt-get's record.
func runDeps(t *testing.T, bin string) (int, string, string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	record := filepath.Join(t.TempDir(), "apt-get.calls")
	cmd := exec.Command(bash, filepath.Join("..", "..", "hack", "deps.sh"))
	// PostgreSQL counts as present (a fake postgres in bin): these cases are about
	// Chromium.
	cmd.Env = []string{"PATH=" + bin, "APT_RECORD=" + record, "OUTPOST_PG_BIN=" + bin}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(record)
	return code, string(out), string(calls)
}

// fakeBin makes a directory of fake programs: id printing uid, an apt-get that
// records its arguments and "installs" chromium into the directory, and chromium
// itself when present.
func fakeBin(t *testing.T, uid string, chromium bool) string {
	t.Helper()
	bin := t.TempDir()
	write := func(name, script string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", "echo "+uid+"\n")
	write("postgres", "exit 0\n")
	write("apt-get", `echo "$@" >> "$APT_RECORD"
case "$1" in install) printf '#!/bin/sh\n' > "`+bin+`/chromium"; /bin/chmod +x "`+bin+`/chromium";; esac
`)
	if chromium {
		write("chromium", "exit 0\n")
	}
	return bin
}

// TestDepsInstallsChromiumOrStopsFirst keeps README's promise that make test sets up
// what it needs: with Chromium missing, hack/deps.sh (make deps, run before any test)
// installs Debian's package as root, and otherwise stops at once with one line
// naming what to install (issue: make test on a fresh machine).
func TestDepsInstallsChromiumOrStopsFirst(t *testing.T) {
	t.Run("present: nothing to do", func(t *testing.T) {
		code, out, calls := runDeps(t, fakeBin(t, "0", true))
		if code != 0 || calls != "" || out != "" {
			t.Errorf("exit %d, output %q, apt-get %q; want 0, silent, no apt-get", code, out, calls)
		}
	})
	t.Run("missing, root: apt-get installs chromium", func(t *testing.T) {
		code, out, calls := runDeps(t, fakeBin(t, "0", false))
		if code != 0 || !strings.Contains(calls, "update") || !strings.Contains(calls, "install -y -qq chromium") {
			t.Errorf("exit %d, output %q, apt-get calls %q; want update and install chromium", code, out, calls)
		}
	})
	t.Run("missing, not root: one line and exit 1", func(t *testing.T) {
		code, out, calls := runDeps(t, fakeBin(t, "1000", false))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 1 || calls != "" || len(lines) != 1 || !strings.Contains(out, "sudo apt-get install -y chromium") {
			t.Errorf("exit %d, output %q, apt-get %q; want exit 1 with one line naming the package", code, out, calls)
		}
	})
}
