package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandBadConfigIsUsageError: the agent program's configuration errors are
// usage errors (exit code 2) on one line naming the flag and its variable.
func TestCommandBadConfigIsUsageError(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"missing cluster name": {args: []string{"--git-url=file:///srv/fleet"}, want: "--cluster (OUTPOST_CLUSTER): required"},
		"bad duration in env":  {args: []string{"--cluster=dev", "--git-url=file:///srv/fleet"}, env: map[string]string{"OUTPOST_INTERVAL": "often"}, want: "--interval (OUTPOST_INTERVAL)"},
		"unknown flag":         {args: []string{"--no-such-flag"}, want: "--no-such-flag"},
		"positional argument":  {args: []string{"agent"}, want: "unexpected arguments"},
		"bad log level":        {args: []string{"--cluster=dev", "--git-url=file:///srv/fleet", "--log-level=loud"}, want: "--log-level"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			var stderr bytes.Buffer
			err := Command(context.Background(), tc.args, lookup, &stderr, nil)
			if code := ExitCode(err); code != ExitUsage {
				t.Fatalf("exit code %d (err %v), want %d", code, err, ExitUsage)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
}

// TestCommandHelp: --help lists the flags and exits 0.
func TestCommandHelp(t *testing.T) {
	var stderr bytes.Buffer
	err := Command(context.Background(), []string{"--help"}, func(string) (string, bool) { return "", false }, &stderr, nil)
	if code := ExitCode(err); code != ExitOK {
		t.Fatalf("exit code %d (err %v), want 0", code, err)
	}
	for _, want := range []string{"--git-url", "--pprof-listen", "--log-level"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}
