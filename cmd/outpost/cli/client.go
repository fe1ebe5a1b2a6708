package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
)

// This file holds what the verbs that talk to the hub share: where the hub and the
// token come from, the API client, output formats and exit codes.

// Environment variables of the hub verbs.
const (
	envHubURL = "OUTPOST_HUB_URL"
	envToken  = "OUTPOST_TOKEN"
)

// exitCodesHelp documents the exit codes in `outpost --help` (and docs/cli.md).
const exitCodesHelp = `Exit codes, for scripts:
  0  success
  1  error not listed below
  2  usage: a bad flag, argument or configuration (also a missing hub URL or token)
  3  not found: no such cluster, app or previous version (HTTP 404)
  4  conflict: a stale --if-match revision, or a cluster registered twice (HTTP 409)
  5  auth: the token is missing, unknown or not allowed to do this (HTTP 401, 403)
  6  hub unreachable or unavailable: no connection, timeout, HTTP 502, 503, 504; retry later`

// hubVerbCommands returns the verbs that talk to the hub.
func hubVerbCommands() []*cobra.Command {
	return []*cobra.Command{
		newClustersCommand(), newSetCommand(), newUnsetCommand(), newRollbackCommand(),
		newPromoteCommand(), newStatusCommand(), newHistoryCommand(), newRolloutCommand(),
	}
}

// hubExitCode maps an error of a call to the hub to its exit code; ok is false for
// other errors.
func hubExitCode(err error) (code int, ok bool) {
	var apiErr *hubapi.APIError
	var unreachable *hubapi.UnreachableError
	switch {
	case errors.As(err, &unreachable):
		return ExitUnreachable, true
	case !errors.As(err, &apiErr):
		return 0, false
	case apiErr.NotFound():
		return ExitNotFound, true
	case apiErr.Conflict():
		return ExitConflict, true
	case apiErr.Unauthorized():
		return ExitAuth, true
	case apiErr.Unavailable():
		return ExitUnreachable, true
	}
	return ExitError, true
}

// hubFlags are the flags every hub verb has: how to reach the hub and how to print.
type hubFlags struct {
	// hub is the hub's base URL.
	hub string
	// token is the admin bearer token.
	token string
	// tokenFile is a file holding the token.
	tokenFile string
	// config is the config file; empty for the default.
	config string
	// output is table, json or yaml.
	output string
	// timeout bounds each call to the hub, retries included.
	timeout time.Duration
}

func (f *hubFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.hub, "hub", "", "hub URL, e.g. https://outpost.example.com (env "+envHubURL+")")
	fs.StringVar(&f.token, "token", "", "admin bearer token (env "+envToken+"; prefer --token-file: flags show in ps)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the admin bearer token")
	fs.StringVar(&f.config, "config", "", "config file (default $XDG_CONFIG_HOME/outpost/config.yaml or ~/.config/outpost/config.yaml)")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on each call to the hub, retries included")
}

// cliConfig is the config file of the hub verbs.
type cliConfig struct {
	// Hub is the hub's base URL.
	Hub string `json:"hub,omitempty"`
	// Token is the admin bearer token.
	Token string `json:"token,omitempty"`
	// TokenFile is a file holding the token; relative to the config file's directory.
	TokenFile string `json:"tokenFile,omitempty"`
}

// defaultConfigPath returns $XDG_CONFIG_HOME/outpost/config.yaml, else
// ~/.config/outpost/config.yaml; empty when neither variable is set.
func defaultConfigPath() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "outpost", "config.yaml")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config", "outpost", "config.yaml")
	}
	return ""
}

// loadConfig reads the config file: the one given with --config (which must exist),
// else the default one if it exists.
func (f *hubFlags) loadConfig() (cfg cliConfig, path string, err error) {
	path = f.config
	explicit := path != ""
	if !explicit {
		path = defaultConfigPath()
		if path == "" {
			return cfg, "", nil
		}
	}
	data, err := os.ReadFile(path)
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, &UsageError{Err: fmt.Errorf("config file: %w", err)}
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, path, &UsageError{Err: fmt.Errorf("config file %s: %w (want keys hub, token, tokenFile)", path, err)}
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return cfg, path, &UsageError{Err: fmt.Errorf("config file %s: set token or tokenFile, not both", path)}
	}
	if cfg.TokenFile != "" && !filepath.IsAbs(cfg.TokenFile) {
		cfg.TokenFile = filepath.Join(filepath.Dir(path), cfg.TokenFile)
	}
	return cfg, path, nil
}

// resolve returns the hub URL and token: each from its flag, else its environment
// variable, else the config file. A missing one is a usage error naming all three.
func (f *hubFlags) resolve() (hubURL, token string, err error) {
	if f.token != "" && f.tokenFile != "" {
		return "", "", &UsageError{Err: errors.New("give --token or --token-file, not both")}
	}
	cfg, path, err := f.loadConfig()
	if err != nil {
		return "", "", err
	}
	where := "the config file " + path
	if path == "" {
		where = "a config file (--config)"
	}

	hubURL = firstNonEmpty(f.hub, os.Getenv(envHubURL), cfg.Hub)
	if hubURL == "" {
		return "", "", &UsageError{Err: fmt.Errorf(
			"no hub URL: pass --hub URL, set %s, or put \"hub: URL\" in %s", envHubURL, where)}
	}

	switch {
	case f.token != "":
		token = f.token
	case f.tokenFile != "":
		token, err = readToken("--token-file", f.tokenFile)
	case os.Getenv(envToken) != "":
		token = os.Getenv(envToken)
	case cfg.Token != "":
		token = cfg.Token
	case cfg.TokenFile != "":
		token, err = readToken("tokenFile of "+path, cfg.TokenFile)
	default:
		err = &UsageError{Err: fmt.Errorf(
			"no hub token: pass --token-file FILE (or --token), set %s, or put \"token:\" or \"tokenFile:\" in %s",
			envToken, where)}
	}
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(hubURL), strings.TrimSpace(token), nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// readToken reads a token file: its content without surrounding white space.
func readToken(what, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &UsageError{Err: fmt.Errorf("%s: %w", what, err)}
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", &UsageError{Err: fmt.Errorf("%s: %s is empty", what, path)}
	}
	return token, nil
}

// client checks the output format, resolves the hub and token, and returns the API
// client. Everything wrong here is a usage error, found before any request.
func (f *hubFlags) client() (*hubapi.Client, error) {
	if err := checkOutput(f.output); err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, &UsageError{Err: errors.New("--timeout must be positive")}
	}
	hubURL, token, err := f.resolve()
	if err != nil {
		return nil, err
	}
	c, err := hubapi.New(hubURL, token, hubapi.Options{Timeout: f.timeout, UserAgent: "outpost-cli"})
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return c, nil
}

func checkOutput(format string) error {
	switch format {
	case "table", "json", "yaml":
		return nil
	}
	return &UsageError{Err: fmt.Errorf("--output %q: want table, json or yaml", format)}
}

// write prints v as JSON or YAML, or calls table for the table format.
func write(w io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON output: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode YAML output: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return table(w)
}

// newTable returns a writer aligning tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timestamp formats a time for tables: RFC 3339 in UTC to the second, "-" when zero.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// shortCommit abbreviates a commit hash to 12 digits.
func shortCommit(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// formatLabels formats labels as "k=v,k2=v2", sorted by key.
func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

// checkName validates a cluster or app name given on the command line.
func checkName(what, name string) error {
	if err := apiv1.ValidateName(what, name); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// checkIfMatch validates an --if-match revision: empty, or a full commit hash
// (optionally quoted).
func checkIfMatch(rev string) error {
	if err := apiv1.ValidateRevision("--if-match", strings.Trim(rev, `"`)); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}
