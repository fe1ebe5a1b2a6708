package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gitops/outpost/internal/hubapi/hubapitest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/verbs")

// verbClock is the fake hub's fixed clock, so outputs are stable.
var verbClock = func() time.Time { return time.Date(2026, 3, 2, 10, 16, 0, 0, time.UTC) }

const verbToken = "admin-token-ada"

// verbHub starts a fake hub holding the seeded fleet, with verbToken for author ada.
func verbHub(t *testing.T) (*hubapitest.Hub, *httptest.Server) {
	t.Helper()
	h := hubapitest.New(verbClock)
	h.AddToken(verbToken, "ada")
	h.SeedFleet()
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return h, srv
}

// verbResult is what a run of the binary would show.
type verbResult struct {
	stdout, stderr string
	code           int
}

// runVerb runs the command tree as main does, with OUTPOST_HUB_URL and OUTPOST_TOKEN
// set from env (unset when absent) and an empty default config directory.
func runVerb(t *testing.T, env map[string]string, args ...string) verbResult {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, k := range []string{envHubURL, envToken} {
		t.Setenv(k, env[k])
	}
	var out, errOut bytes.Buffer
	root := NewRootCommand(&out, &errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil {
		errOut.WriteString("outpost: " + err.Error() + "\n")
	}
	return verbResult{stdout: out.String(), stderr: errOut.String(), code: ExitCode(err)}
}

func hubEnv(srv *httptest.Server) map[string]string {
	return map[string]string{envHubURL: srv.URL, envToken: verbToken}
}

// checkGolden compares got with testdata/verbs/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "verbs", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (regenerate with go test -run %s -update): %v", t.Name(), err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (regenerate with -update if intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestVerbOutputs(t *testing.T) {
	const ifMatchStale = "0000000000000000000000000000000000000000"
	tests := map[string]struct {
		args []string
	}{
		"clusters-list.table":     {[]string{"clusters", "list"}},
		"clusters-list.json":      {[]string{"clusters", "list", "-o", "json"}},
		"clusters-list.yaml":      {[]string{"clusters", "list", "-o", "yaml"}},
		"clusters-add.table":      {[]string{"clusters", "add", "prod-us", "--label", "env=prod", "-l", "region=us"}},
		"clusters-add.json":       {[]string{"clusters", "add", "prod-us", "--label", "env=prod", "-o", "json"}},
		"clusters-remove.table":   {[]string{"clusters", "remove", "staging"}},
		"clusters-remove.json":    {[]string{"clusters", "rm", "staging", "-o", "json"}},
		"status.table":            {[]string{"status"}},
		"status.json":             {[]string{"status", "-o", "json"}},
		"status.yaml":             {[]string{"status", "-o", "yaml"}},
		"status-prod-eu.table":    {[]string{"status", "prod-eu"}},
		"status-prod-eu.json":     {[]string{"status", "prod-eu", "-o", "json"}},
		"status-prod-eu.yaml":     {[]string{"status", "prod-eu", "-o", "yaml"}},
		"set.table":               {[]string{"set", "web", "1.4.4", "--cluster", "prod-eu"}},
		"set.json":                {[]string{"set", "web", "1.4.4", "--cluster", "prod-eu", "-o", "json"}},
		"set.yaml":                {[]string{"set", "web", "1.4.4", "-c", "prod-eu", "-o", "yaml"}},
		"set-unchanged.table":     {[]string{"set", "web", "1.4.3", "--cluster", "prod-eu"}},
		"set-new-app.table":       {[]string{"set", "search", "1.0.0", "--cluster", "staging"}},
		"unset.table":             {[]string{"unset", "payments", "--cluster", "staging"}},
		"rollback.table":          {[]string{"rollback", "web", "--cluster", "prod-eu"}},
		"rollback.json":           {[]string{"rollback", "web", "--cluster", "prod-eu", "-o", "json"}},
		"history-prod-eu.table":   {[]string{"history", "--cluster", "prod-eu"}},
		"history-web.table":       {[]string{"history", "--cluster", "prod-eu", "--app", "web", "--limit", "2"}},
		"history-web.json":        {[]string{"history", "--cluster", "prod-eu", "--app", "web", "-o", "json"}},
		"history-web.yaml":        {[]string{"history", "--cluster", "prod-eu", "--app", "web", "-o", "yaml"}},
		"set-selector.table":      {[]string{"set", "web", "1.6.0", "--selector", "env in (prod,staging)"}},
		"set-selector-dry.table":  {[]string{"set", "web", "1.4.3", "-l", "env", "--dry-run"}},
		"set-clusters.json":       {[]string{"set", "web", "1.6.0", "-c", "prod-eu", "-c", "staging", "-o", "json"}},
		"unset-selector.table":    {[]string{"unset", "payments", "--selector", "env in (prod,staging)"}},
		"rollback-selector.table": {[]string{"rollback", "web", "--selector", "region=eu"}},
		"promote.table":           {[]string{"promote", "search", "--from", "prod-eu", "--to", "env=staging"}},
		"error-not-found":         {[]string{"status", "nope"}},
		"error-conflict":          {[]string{"set", "web", "1.4.4", "--cluster", "prod-eu", "--if-match", ifMatchStale}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, srv := verbHub(t)
			r := runVerb(t, hubEnv(srv), tc.args...)
			got := r.stdout
			if strings.HasPrefix(name, "error-") {
				got = r.stderr
			} else if r.code != 0 {
				t.Fatalf("outpost %s: exit %d\n%s", strings.Join(tc.args, " "), r.code, r.stderr)
			}
			checkGolden(t, name, got)
		})
	}
}

func TestClustersAddShowsTheTokenOnce(t *testing.T) {
	_, srv := verbHub(t)
	r := runVerb(t, hubEnv(srv), "clusters", "add", "prod-us", "-l", "env=prod")
	if r.code != 0 || strings.Count(r.stdout, "opa_FAKEprod-us") != 1 || !strings.Contains(r.stdout, "cannot show\nit again") {
		t.Errorf("table output: exit %d\n%s", r.code, r.stdout)
	}
	// With -o json the JSON on stdout stays clean for jq; the note goes to stderr.
	r = runVerb(t, hubEnv(srv), "clusters", "add", "prod-ap", "-o", "json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{") || !strings.Contains(r.stderr, "shown only this once") {
		t.Errorf("json output: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestClustersRotateToken: the verb sends the grace period, prints the new token once
// and makes no commit.
func TestClustersRotateToken(t *testing.T) {
	h, srv := verbHub(t)
	rev := h.Revision()
	r := runVerb(t, hubEnv(srv), "clusters", "rotate-token", "prod-eu", "--grace", "10m")
	if r.code != 0 || strings.Count(r.stdout, "opa_FAKEprod-eu-r1") != 1 || !strings.Contains(r.stdout, "previous token works until") {
		t.Fatalf("rotate-token: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	reqs := h.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "POST" || last.Path != "/api/v1/clusters/prod-eu/token" || string(last.Body) != `{"graceSeconds":600}` {
		t.Errorf("last request %s %s %s", last.Method, last.Path, last.Body)
	}
	if h.Revision() != rev {
		t.Errorf("rotate-token moved the revision")
	}
	for args, want := range map[string]string{
		"clusters rotate-token prod-eu --grace 25h":  "--grace 25h0m0s: want whole seconds from 0 to 24h",
		"clusters rotate-token prod-eu --grace 1.5s": "want whole seconds",
		"clusters rotate-token nope":                 "nope",
	} {
		r := runVerb(t, hubEnv(srv), strings.Fields(args)...)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("outpost %s: exit %d, stderr %q, want %q", args, r.code, r.stderr, want)
		}
	}
}

func TestSetSendsIfMatchAndToken(t *testing.T) {
	h, srv := verbHub(t)
	rev := h.Revision()
	r := runVerb(t, hubEnv(srv), "set", "web", "1.4.4", "--cluster", "prod-eu", "--if-match", rev)
	if r.code != 0 {
		t.Fatalf("set with the current revision: exit %d\n%s", r.code, r.stderr)
	}
	reqs := h.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "PUT" || last.Path != "/api/v1/clusters/prod-eu/apps/web" {
		t.Fatalf("last request %s %s, want PUT /api/v1/clusters/prod-eu/apps/web", last.Method, last.Path)
	}
	if got := last.Header.Get("If-Match"); got != `"`+rev+`"` {
		t.Errorf("If-Match = %q, want %q", got, `"`+rev+`"`)
	}
	if got := last.Header.Get("Authorization"); got != "Bearer "+verbToken {
		t.Errorf("Authorization = %q", got)
	}
	if last.Author != "ada" || string(last.Body) != `{"version":"1.4.4"}` {
		t.Errorf("author %q body %s, want ada and the version", last.Author, last.Body)
	}
	hl, err := h.History("prod-eu", "web", 1)
	if err != nil || hl.Entries[0].Author != "ada" || hl.Entries[0].After != "1.4.4" {
		t.Errorf("history after set: %+v, %v", hl, err)
	}
}

// TestBulkSetIsOneRequest: a selector or several clusters make one bulk request (one
// commit), with the body the API documents; promote guards it with the status's revision.
func TestBulkSetIsOneRequest(t *testing.T) {
	h, srv := verbHub(t)
	n := len(h.Requests())
	r := runVerb(t, hubEnv(srv), "set", "web", "1.6.0", "-c", "prod-eu,staging", "--if-match", h.Revision())
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	reqs := h.Requests()[n:]
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/apps/web/bulk" {
		t.Fatalf("requests = %+v, want one POST /api/v1/apps/web/bulk", reqs)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["action"] != "set" || body["version"] != "1.6.0" || len(body["clusters"].([]any)) != 2 || body["ifMatch"] == "" || body["dryRun"] != nil {
		t.Errorf("body = %s", reqs[0].Body)
	}
	for _, c := range []string{"prod-eu", "staging"} {
		hl, _ := h.History(c, "web", 1)
		if hl.Entries[0].After != "1.6.0" || hl.Entries[0].Commit != h.Revision() {
			t.Errorf("%s history = %+v, want 1.6.0 at the one new revision", c, hl.Entries[0])
		}
	}

	rev := h.Revision()
	n = len(h.Requests())
	if r := runVerb(t, hubEnv(srv), "promote", "search", "--from", "prod-eu", "--to", "env=staging"); r.code != 0 {
		t.Fatalf("promote: exit %d\n%s", r.code, r.stderr)
	}
	reqs = h.Requests()[n:]
	if len(reqs) != 2 || reqs[0].Path != "/api/v1/clusters/prod-eu/status" || reqs[1].Path != "/api/v1/apps/search/bulk" {
		t.Fatalf("promote requests = %+v", reqs)
	}
	if err := json.Unmarshal(reqs[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["version"] != "0.9.1" || body["selector"] != "env=staging" || body["ifMatch"] != rev || body["varsFrom"] != nil {
		t.Errorf("promote body = %s, want 0.9.1 on env=staging at %s, no varsFrom", reqs[1].Body, rev)
	}
	if r := runVerb(t, hubEnv(srv), "promote", "search", "--from", "prod-eu", "--to", "env=staging", "--vars", "--dry-run"); r.code != 0 {
		t.Fatalf("promote --vars: exit %d\n%s", r.code, r.stderr)
	}
	reqs = h.Requests()
	body = nil
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["varsFrom"] != "prod-eu" || body["dryRun"] != true {
		t.Errorf("promote --vars --dry-run body = %s", reqs[len(reqs)-1].Body)
	}
}

func TestExitCodes(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string // nil: the fake hub with the admin token
		args    []string
		code    int
		message string // a part of the one-line error
	}{
		"ok":                  {nil, []string{"status"}, ExitOK, ""},
		"unknown cluster":     {nil, []string{"status", "nope"}, ExitNotFound, `not_found: cluster: cluster "nope" is not registered (HTTP 404)`},
		"unknown app":         {nil, []string{"unset", "nope", "--cluster", "prod-eu"}, ExitNotFound, "not_found"},
		"no previous version": {nil, []string{"rollback", "search", "--cluster", "prod-eu"}, ExitNotFound, "no previous version"},
		"stale if-match": {nil, []string{"set", "web", "2.0.0", "-c", "prod-eu", "--if-match", strings.Repeat("a", 40)},
			ExitConflict, "conflict: If-Match: revision aaaa"},
		"duplicate cluster": {nil, []string{"clusters", "add", "prod-eu"}, ExitConflict, `conflict: name: cluster "prod-eu" is registered already (HTTP 409)`},
		"bad token": {map[string]string{envToken: "wrong"}, []string{"clusters", "list"}, ExitAuth,
			"unauthorized: missing or unknown bearer token (HTTP 401)"},
		"invalid version": {nil, []string{"set", "web", "1.4 beta", "-c", "prod-eu"}, ExitUsage, "must hold only letters"},
		"invalid name":    {nil, []string{"set", "Web", "1.4", "-c", "prod-eu"}, ExitUsage, "not a valid name"},
		"path as name":    {nil, []string{"status", "../etc"}, ExitUsage, "not a valid name"},
		"missing cluster": {nil, []string{"set", "web", "1.4"}, ExitUsage, "--cluster or --selector is required"},
		"selector matching none": {nil, []string{"set", "web", "1.4", "--selector", "env=nowhere"}, ExitError,
			`invalid: selector: "env=nowhere" matches no cluster`},
		"bulk unknown cluster": {nil, []string{"set", "web", "1.4", "-c", "prod-eu", "-c", "nope"}, ExitNotFound, `cluster "nope"`},
		"bulk unset refused": {nil, []string{"unset", "search", "--selector", "env"}, ExitNotFound,
			`app "search" is not set on cluster "staging"`},
		"promote unhealthy": {nil, []string{"promote", "web", "--from", "staging", "--to", "env=prod"}, ExitError,
			"refusing to promote web from staging: it is Syncing at 1.5.0-rc.1, not Synced"},
		"promote not rolled out": {nil, []string{"promote", "web", "--from", "prod-eu", "--to", "env=staging"}, ExitError,
			"it runs 1.4.2, but Git asks for 1.4.3"},
		"promote failed": {nil, []string{"promote", "payments", "--from", "prod-eu", "--to", "env=staging"}, ExitError,
			"it is Failed at 2.0.0, not Synced"},
		"promote unknown app":    {nil, []string{"promote", "nope", "--from", "prod-eu", "--to", "env=staging"}, ExitError, "neither desires nor reports it"},
		"promote unknown source": {nil, []string{"promote", "web", "--from", "nope", "--to", "env=staging"}, ExitNotFound, `cluster "nope"`},
		"promote without to":     {nil, []string{"promote", "web", "--from", "prod-eu"}, ExitUsage, "--from and --to are required"},
		"bad if-match":           {nil, []string{"unset", "web", "-c", "prod-eu", "--if-match", "HEAD"}, ExitUsage, "not a full Git commit hash"},
		"bad output":             {nil, []string{"status", "-o", "xml"}, ExitUsage, "want table, json or yaml"},
		"bad limit":              {nil, []string{"history", "-c", "prod-eu", "--limit", "5000"}, ExitUsage, "--limit 5000"},
		"bad label":              {nil, []string{"clusters", "add", "x", "--label", "novalue"}, ExitUsage, "want key=value"},
		"extra argument":         {nil, []string{"unset", "web", "extra", "-c", "prod-eu"}, ExitUsage, "want APP"},
		"unknown flag":           {nil, []string{"status", "--nope"}, ExitUsage, "unknown flag"},
		"unknown subverb":        {nil, []string{"clusters", "nope"}, ExitUsage, "want list, add, rotate-token or remove"},
		"bad hub URL":            {map[string]string{envHubURL: "ftp://x"}, []string{"status"}, ExitUsage, "want http:// or https://"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, srv := verbHub(t)
			env := hubEnv(srv)
			for k, v := range tc.env {
				env[k] = v
			}
			r := runVerb(t, env, tc.args...)
			if r.code != tc.code {
				t.Fatalf("outpost %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
			}
			if tc.message == "" {
				return
			}
			if !strings.Contains(r.stderr, tc.message) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", r.stderr, tc.message)
			}
		})
	}
}

func TestUnreachableAndUnavailableHub(t *testing.T) {
	h, srv := verbHub(t)
	h.SetUnavailable(true)
	r := runVerb(t, hubEnv(srv), "status")
	if r.code != ExitUnreachable || !strings.Contains(r.stderr, "unavailable: the hub is shutting down (HTTP 503)") {
		t.Errorf("503: exit %d, %q", r.code, r.stderr)
	}
	if n := len(h.Requests()); n != 4 {
		t.Errorf("503: %d requests, want 4 (3 retries)", n)
	}

	dead := httptest.NewServer(nil)
	url := dead.URL
	dead.Close()
	r = runVerb(t, map[string]string{envHubURL: url, envToken: verbToken}, "clusters", "list")
	if r.code != ExitUnreachable || !strings.Contains(r.stderr, "unreachable") || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("closed port: exit %d, %q", r.code, r.stderr)
	}
}

func TestHubAndTokenPrecedence(t *testing.T) {
	// Three hubs, each knowing three tokens: which hub got the request and which
	// token it carried show where each setting came from.
	hubs := map[string]*hubapitest.Hub{}
	urls := map[string]string{}
	for _, src := range []string{"flag", "env", "file"} {
		h := hubapitest.New(verbClock)
		for _, tok := range []string{"flag", "env", "file", "flagfile", "cfgfile"} {
			h.AddToken(tok+"-token", tok)
		}
		srv := httptest.NewServer(h.Handler())
		t.Cleanup(srv.Close)
		hubs[src], urls[src] = h, srv.URL
	}
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := writeFile("token", "flagfile-token\n")
	writeFile("cfg.token", "  cfgfile-token  \n")
	withToken := writeFile("with-token.yaml", "hub: "+urls["file"]+"\ntoken: file-token\n")
	withTokenFile := writeFile("with-token-file.yaml", "hub: "+urls["file"]+"\ntokenFile: cfg.token\n")

	tests := map[string]struct {
		env       map[string]string
		args      []string
		hub, auth string
	}{
		"flags beat env and file": {
			map[string]string{envHubURL: urls["env"], envToken: "env-token"},
			[]string{"--config", withToken, "--hub", urls["flag"], "--token", "flag-token"}, "flag", "flag",
		},
		"token file flag beats env": {
			map[string]string{envToken: "env-token"},
			[]string{"--config", withToken, "--token-file", tokenFile}, "file", "flagfile",
		},
		"env beats file": {
			map[string]string{envHubURL: urls["env"], envToken: "env-token"},
			[]string{"--config", withToken}, "env", "env",
		},
		"file alone":                  {nil, []string{"--config", withToken}, "file", "file"},
		"file token file is relative": {nil, []string{"--config", withTokenFile}, "file", "cfgfile"},
		"mixed sources":               {map[string]string{envToken: "env-token"}, []string{"--hub", urls["flag"]}, "flag", "env"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := map[string]int{}
			for k, h := range hubs {
				before[k] = len(h.Requests())
			}
			r := runVerb(t, tc.env, append([]string{"clusters", "list"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for k, h := range hubs {
				reqs := h.Requests()
				got := len(reqs) - before[k]
				switch {
				case k == tc.hub && got != 1:
					t.Errorf("hub %q got %d requests, want 1", k, got)
				case k == tc.hub && reqs[len(reqs)-1].Author != tc.auth:
					t.Errorf("the request carried the %q token, want %q", reqs[len(reqs)-1].Author, tc.auth)
				case k != tc.hub && got != 0:
					t.Errorf("hub %q got %d requests, want none", k, got)
				}
			}
		})
	}

	// The default config file is $XDG_CONFIG_HOME/outpost/config.yaml.
	t.Run("default config file", func(t *testing.T) {
		cfgHome := t.TempDir()
		if err := os.MkdirAll(filepath.Join(cfgHome, "outpost"), 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(withToken)
		if err := os.WriteFile(filepath.Join(cfgHome, "outpost", "config.yaml"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		t.Setenv(envHubURL, "")
		t.Setenv(envToken, "")
		t.Setenv("XDG_CONFIG_HOME", cfgHome)
		root := NewRootCommand(&out, &errOut)
		root.SetArgs([]string{"clusters", "list"})
		if err := root.Execute(); err != nil {
			t.Fatalf("with the default config file: %v", err)
		}
	})
}

func TestMissingOrBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("hub: http://x\nhubb: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(dir, "both.yaml")
	if err := os.WriteFile(both, []byte("hub: http://x\ntoken: a\ntokenFile: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env   map[string]string
		args  []string
		wants []string
	}{
		"no hub URL":         {map[string]string{envToken: "t"}, nil, []string{"no hub URL", "--hub", envHubURL, `"hub: URL"`, "config.yaml"}},
		"no token":           {map[string]string{envHubURL: "http://127.0.0.1:1"}, nil, []string{"no hub token", "--token-file", envToken, "tokenFile:"}},
		"token and file":     {nil, []string{"--hub", "http://x", "--token", "a", "--token-file", empty}, []string{"not both"}},
		"unknown key":        {nil, []string{"--config", bad}, []string{bad, "hubb"}},
		"token twice":        {nil, []string{"--config", both}, []string{"token or tokenFile, not both"}},
		"missing --config":   {nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		"empty token file":   {nil, []string{"--hub", "http://x", "--token-file", empty}, []string{"is empty"}},
		"missing token file": {nil, []string{"--hub", "http://x", "--token-file", filepath.Join(dir, "nope")}, []string{"--token-file", "no such file"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runVerb(t, tc.env, append([]string{"clusters", "list"}, tc.args...)...)
			if r.code != ExitUsage {
				t.Fatalf("exit %d, want %d: %s", r.code, ExitUsage, r.stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
		})
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	r := runVerb(t, nil, "--help")
	for _, want := range []string{"Exit codes", "3  not found", "4  conflict", "5  auth", "6  hub unreachable"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("outpost --help lacks %q", want)
		}
	}
}
