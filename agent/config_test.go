package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigFromFlagsAndEnv(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"OUTPOST_CLUSTER":    "prod-eu",
		"OUTPOST_GIT_URL":    "https://git.example.com/org/fleet.git",
		"OUTPOST_HUB_URL":    "https://hub.example.com",
		"OUTPOST_TOKEN_FILE": token,
		"OUTPOST_CACHE_DIR":  dir,
	}
	cases := map[string]struct {
		args []string
		env  map[string]string
		// wantFlag is the flag a *ConfigError must name; "" means valid.
		wantFlag string
		wantText string
	}{
		"valid from env":              {},
		"flag wins over env":          {args: []string{"--cluster=dev"}},
		"missing cluster name":        {env: map[string]string{"OUTPOST_CLUSTER": ""}, wantFlag: "cluster", wantText: "required"},
		"cluster name with slash":     {env: map[string]string{"OUTPOST_CLUSTER": "a/b"}, wantFlag: "cluster"},
		"unreadable token file":       {env: map[string]string{"OUTPOST_TOKEN_FILE": filepath.Join(dir, "nope")}, wantFlag: "token-file", wantText: "no such file"},
		"hub without token":           {env: map[string]string{"OUTPOST_TOKEN_FILE": ""}, wantFlag: "token-file", wantText: "required with --hub-url"},
		"malformed git url":           {env: map[string]string{"OUTPOST_GIT_URL": "https://user:hunter2@ex ample.com/x"}, wantFlag: "git-url", wantText: "malformed URL"},
		"unsupported git scheme":      {env: map[string]string{"OUTPOST_GIT_URL": "ftp://example.com/x"}, wantFlag: "git-url", wantText: "scheme"},
		"scp-like git url":            {env: map[string]string{"OUTPOST_GIT_URL": "git@github.com:org/fleet.git"}},
		"file git url":                {env: map[string]string{"OUTPOST_GIT_URL": "file:///srv/fleet"}},
		"bad duration in env":         {env: map[string]string{"OUTPOST_INTERVAL": "5 minutes"}, wantFlag: "interval", wantText: "OUTPOST_INTERVAL"},
		"zero duration":               {args: []string{"--interval=0s"}, wantFlag: "interval", wantText: "positive"},
		"bad concurrency":             {args: []string{"--concurrency=0"}, wantFlag: "concurrency"},
		"bad listen address":          {args: []string{"--listen=8080"}, wantFlag: "listen"},
		"hub url not http":            {env: map[string]string{"OUTPOST_HUB_URL": "ftp://hub"}, wantFlag: "hub-url"},
		"standalone needs no token":   {env: map[string]string{"OUTPOST_HUB_URL": "", "OUTPOST_TOKEN_FILE": ""}},
		"bad branch":                  {args: []string{"--git-branch=a..b"}, wantFlag: "git-branch"},
		"missing kubeconfig file":     {args: []string{"--kubeconfig=" + filepath.Join(dir, "kc")}, wantFlag: "kubeconfig"},
		"leader election needs lease": {args: []string{"--lease-namespace=Bad_NS"}, wantFlag: "lease-namespace"},
		"cache dir kustomize refuses": {args: []string{"--cache-dir=/tmp/my cache"}, wantFlag: "cache-dir", wantText: `"my cache"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg := DefaultConfig()
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			cfg.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err == nil {
				err = cfg.Validate()
			}
			if tc.wantFlag == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if want := map[bool]string{true: "dev", false: env["OUTPOST_CLUSTER"]}[len(tc.args) > 0 && tc.args[0] == "--cluster=dev"]; cfg.ClusterName != want {
					t.Errorf("cluster = %q, want %q", cfg.ClusterName, want)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfigError for --%s", err, tc.wantFlag)
			}
			if ce.Flag != tc.wantFlag || !strings.Contains(err.Error(), "--"+tc.wantFlag) || !strings.Contains(err.Error(), EnvName(tc.wantFlag)) {
				t.Errorf("err = %q, want it to name --%s and %s", err, tc.wantFlag, EnvName(tc.wantFlag))
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("err = %q, want it to contain %q", err, tc.wantText)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err = %q leaks a password", err)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("err = %q, want one line", err)
			}
		})
	}
}
