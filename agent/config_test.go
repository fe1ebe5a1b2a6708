package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/spf13/pflag"
)

func TestConfigFromFlagsAndEnv(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyring, garbage := filepath.Join(dir, "keyring.asc"), filepath.Join(dir, "garbage.gpg")
	writeTestKeyring(t, keyring)
	if err := os.WriteFile(garbage, []byte("not a keyring"), 0o600); err != nil {
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
		"second hub url not http":     {env: map[string]string{"OUTPOST_HUB_URL": "https://hub-0,ftp://hub-1"}, wantFlag: "hub-url", wantText: "ftp://hub-1"},
		"hub urls only commas":        {env: map[string]string{"OUTPOST_HUB_URL": " , "}, wantFlag: "hub-url", wantText: "holds no URL"},
		"two hub urls":                {env: map[string]string{"OUTPOST_HUB_URL": "https://hub-0.example.com, https://hub-1.example.com"}},
		"standalone needs no token":   {env: map[string]string{"OUTPOST_HUB_URL": "", "OUTPOST_TOKEN_FILE": ""}},
		"bad branch":                  {args: []string{"--git-branch=a..b"}, wantFlag: "git-branch"},
		"missing kubeconfig file":     {args: []string{"--kubeconfig=" + filepath.Join(dir, "kc")}, wantFlag: "kubeconfig"},
		"leader election needs lease": {args: []string{"--lease-namespace=Bad_NS"}, wantFlag: "lease-namespace"},
		"cache dir kustomize refuses": {args: []string{"--cache-dir=/tmp/my cache"}, wantFlag: "cache-dir", wantText: `"my cache"`},
		"plain http hub, require tls": {env: map[string]string{"OUTPOST_HUB_URL": "http://hub.example.com", "OUTPOST_REQUIRE_TLS": "true"}, wantFlag: "require-tls", wantText: "--hub-url http://hub.example.com is plain HTTP"},
		"plain http git, require tls": {args: []string{"--require-tls", "--git-url=http://u:hunter2@git.example.com/f.git"}, wantFlag: "require-tls", wantText: "--git-url http://u:xxxxx@git.example.com/f.git"},
		"loopback http, require tls":  {args: []string{"--require-tls", "--hub-url=http://127.0.0.1:8080"}},
		"pprof on every interface":    {args: []string{"--pprof-listen=:6060"}, wantFlag: "pprof-listen", wantText: "not a loopback address"},
		"pprof remote, forced":        {args: []string{"--pprof-listen=:6060", "--pprof-allow-remote"}},
		"chart verify always":         {args: []string{"--chart-verify=always", "--chart-keyring=" + keyring}},
		"chart verify from env":       {env: map[string]string{"OUTPOST_CHART_VERIFY": "if-required", "OUTPOST_CHART_KEYRING": keyring}},
		"chart verify bad value":      {args: []string{"--chart-verify=yes"}, wantFlag: "chart-verify", wantText: `"yes" is not a verification policy: want if-required or always`},
		"chart verify case in env":    {env: map[string]string{"OUTPOST_CHART_VERIFY": "Always"}, wantFlag: "chart-verify"},
		"chart verify always, no key": {args: []string{"--chart-verify=always"}, wantFlag: "chart-keyring", wantText: "required with --chart-verify=always"},
		"chart keyring missing":       {args: []string{"--chart-keyring=" + filepath.Join(dir, "nope.gpg")}, wantFlag: "chart-keyring", wantText: "no such file"},
		"chart keyring not a keyring": {args: []string{"--chart-keyring=" + garbage}, wantFlag: "chart-keyring", wantText: "keyring " + garbage},
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

// TestAttackPlainHTTPIsWarnedAbout: an agent configured with plain-HTTP URLs to other
// hosts says so at start, one line per flag naming it (security review M8); the
// password of a URL is never in the line.
func TestAttackPlainHTTPIsWarnedAbout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HubURL, cfg.GitURL = "http://hub.example.com", "http://robot:hunter2@git.example.com/fleet.git"
	w := cfg.PlainHTTPWarnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "--hub-url http://hub.example.com") || !strings.HasPrefix(w[1], "--git-url http://robot:xxxxx@git.example.com") ||
		strings.Contains(strings.Join(w, " "), "hunter2") {
		t.Errorf("warnings %q, want one per plain-HTTP flag, passwords redacted", w)
	}
	cfg.HubURL, cfg.GitURL = "https://hub.example.com", "http://localhost:8080/git/dev.git"
	if w := cfg.PlainHTTPWarnings(); len(w) != 0 {
		t.Errorf("warnings %q for https and loopback", w)
	}
}

// writeTestKeyring writes an armored public keyring of one new key to file.
func writeTestKeyring(t *testing.T, file string) {
	t.Helper()
	e, err := openpgp.NewEntity("Charts", "test", "charts@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
