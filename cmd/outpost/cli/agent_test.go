package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestAgentBadConfigExitsWithOneLine runs `outpost agent` with bad configuration and
// checks the exit code and that the one-line error names the flag and its variable.
func TestAgentBadConfigExitsWithOneLine(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"missing cluster name":  {args: []string{"--git-url=file:///srv/fleet"}, want: "--cluster (OUTPOST_CLUSTER): required"},
		"unreadable token file": {args: []string{"--cluster=dev", "--git-url=file:///srv/fleet", "--hub-url=http://hub", "--token-file=/nonexistent/token"}, want: "--token-file (OUTPOST_TOKEN_FILE)"},
		"malformed git url":     {args: []string{"--cluster=dev", "--git-url=https://user:pw@host name/x"}, want: "--git-url (OUTPOST_GIT_URL): malformed URL"},
		"bad duration in env":   {args: []string{"--cluster=dev", "--git-url=file:///srv/fleet"}, env: map[string]string{"OUTPOST_INTERVAL": "often"}, want: "--interval (OUTPOST_INTERVAL)"},
		"bad duration flag":     {args: []string{"--interval=5x"}, want: `"--interval"`},
		"bad log level":         {args: []string{"--cluster=dev", "--git-url=file:///srv/fleet", "--log-level=loud"}, want: "--log-level"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			root := NewRootCommand(&out, &errOut)
			root.SetArgs(append([]string{"agent"}, tc.args...))
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
