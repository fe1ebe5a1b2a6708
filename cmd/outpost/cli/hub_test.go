package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHubBadConfigExitsWithOneLine runs `outpost hub` with bad configuration and checks
// the exit code and that the one-line error names the flag and its variable.
func TestHubBadConfigExitsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("ci:short-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"no admin tokens":    {args: nil, want: "--admin-tokens-file (OUTPOST_ADMIN_TOKENS_FILE): required"},
		"short admin token":  {args: []string{"--admin-tokens-file=" + short}, want: "--admin-tokens-file (OUTPOST_ADMIN_TOKENS_FILE): " + short + ":1: the token is shorter"},
		"git url with a pw":  {args: []string{"--admin-tokens-file=" + short, "--git-url=ftp://user:pw@host/x"}, want: "--git-url (OUTPOST_GIT_URL)"},
		"bad duration env":   {args: []string{"--admin-tokens-file=" + short}, env: map[string]string{"OUTPOST_LONG_POLL_TIMEOUT": "soon"}, want: "--long-poll-timeout (OUTPOST_LONG_POLL_TIMEOUT)"},
		"long-poll from env": {env: map[string]string{"OUTPOST_ADMIN_TOKENS_FILE": short, "OUTPOST_LONG_POLL_TIMEOUT": "2m"}, want: "--long-poll-timeout (OUTPOST_LONG_POLL_TIMEOUT): at most"},
		"bad log level":      {args: []string{"--log-level=loud"}, want: "--log-level"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			root := NewRootCommand(&out, &errOut)
			root.SetArgs(append([]string{"hub", "--data-dir=" + filepath.Join(dir, "data")}, tc.args...))
			err := root.ExecuteContext(context.Background())
			if code := ExitCode(err); code != ExitUsage {
				t.Fatalf("exit code %d (err %v), want %d", code, err, ExitUsage)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "pw@") {
				t.Errorf("error %q: want one line containing %q and no password", msg, tc.want)
			}
		})
	}
}
