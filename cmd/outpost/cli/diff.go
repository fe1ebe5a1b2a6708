package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// Exit codes of `outpost diff`, like diff(1)'s.
const (
	// ExitDiffChanges means the change alters at least one cluster (fleetdiff's
	// Result.Changes: drift a sync keeps is shown but alters nothing).
	ExitDiffChanges = 1
	// ExitDiffError means the diff could not be computed, or the head ref does not
	// load or render somewhere.
	ExitDiffError = 2
	// ExitDiffPolicy means a change --fail-on names is present.
	ExitDiffPolicy = 3
)

// ExitStatusError ends a command with a given exit code; Msg, when set, is printed.
type ExitStatusError struct {
	// Code is the process exit code.
	Code int
	// Msg explains it; empty prints nothing (a diff with changes is not an error).
	Msg string
}

func (e *ExitStatusError) Error() string { return e.Msg }

// diffFlags are the flags of outpost diff.
type diffFlags struct {
	repo, base, head, branch string
	clusters                 []string
	selector                 string
	output                   string
	failOn                   []string
	colour                   string
	kubeconfigs              []string
	chartCacheDir            string
	chartCredentials         string
	chartPlainHTTP           []string
}

// failOnPredicates are the changes --fail-on can name.
var failOnPredicates = map[string]func(fleetdiff.ObjectDiff) bool{
	"prune":     func(d fleetdiff.ObjectDiff) bool { return d.Action == fleetdiff.Removed },
	"crd":       fleetdiff.ObjectDiff.IsCRD,
	"namespace": fleetdiff.ObjectDiff.IsNamespace,
}

func newDiffCommand() *cobra.Command {
	f := &diffFlags{}
	cmd := &cobra.Command{
		Use:   "diff [--repo DIR] [--base REF] [--head REF] [--cluster C | --selector S]",
		Short: "Show what a change to the repository does to every cluster, before it lands",
		Long: `Render the repository at two revisions with Outpost's own loader and renderer,
per cluster and app, and print the objects the change adds, removes (an agent would
prune them) and changes, each with a unified YAML diff. Secret values are masked.
No hub and no cluster are needed: it runs in a plain checkout, e.g. a CI job on a
pull request.

The base defaults to the merge base of HEAD with the followed branch (--branch,
default origin/HEAD, else main); the head defaults to the working tree, uncommitted
changes included. With --kubeconfig CLUSTER=PATH, the head is also dry-run on that
cluster (server-side apply, nothing written), showing what would really change there,
fields other managers changed included; for an app with drift: report, an object
whose desired state did not change since it was last applied is shown as kept, as
a sync would leave it.

Remote Helm charts (helm.repo, helm.oci in app.yaml) are downloaded like the
agent does, into --chart-cache-dir (default: the user's cache directory, e.g.
~/.cache/outpost/charts), with the credentials of --chart-credentials-file (the
agent's format: a YAML mapping of host to {username, password}). A chart that
cannot be fetched is a render error of that app only.

Exit codes, like diff(1)'s: 0 no change (objects a sync keeps are shown but are
no change), 1 changes, 2 error (also a head revision that does not load or render
somewhere, a chart fetch included: each error is printed with its cluster, app,
file and line), 3 a change named by --fail-on (prune, crd, namespace).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", ".", "the repository checkout")
	fl.StringVar(&f.base, "base", "", "base revision (default: merge base of HEAD and --branch)")
	fl.StringVar(&f.head, "head", "", "head revision (default: the working tree)")
	fl.StringVar(&f.branch, "branch", "", "the branch the agents follow, for the default base (default origin/HEAD, else main)")
	fl.StringSliceVarP(&f.clusters, "cluster", "c", nil, "only this cluster (repeatable)")
	fl.StringVarP(&f.selector, "selector", "l", "", "only clusters whose cluster.yaml labels match this label selector")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text, json or markdown")
	fl.StringSliceVar(&f.failOn, "fail-on", nil, "exit 3 when such a change is present: prune, crd, namespace (repeatable)")
	fl.StringVar(&f.colour, "color", "auto", "colour the text output: auto (on a terminal), always or never")
	fl.StringArrayVar(&f.kubeconfigs, "kubeconfig", nil, "CLUSTER=PATH: also dry-run the head on this cluster (server-side) and show what would really change there (repeatable)")
	fl.StringVar(&f.chartCacheDir, "chart-cache-dir", "", "directory of downloaded Helm charts (default: <user cache dir>/outpost/charts)")
	fl.StringVar(&f.chartCredentials, "chart-credentials-file", "", "YAML file mapping Helm chart repository and OCI registry hosts to {username, password} (the agent's format)")
	fl.StringSliceVar(&f.chartPlainHTTP, "chart-plain-http-hosts", nil, "comma-separated OCI registry hosts reached over plain HTTP")
	return cmd
}

// check validates the flags before any work.
func (f *diffFlags) check() (labels.Selector, error) {
	if !slices.Contains([]string{"text", "json", "markdown"}, f.output) {
		return nil, &UsageError{Err: fmt.Errorf("--output %q: want text, json or markdown", f.output)}
	}
	if !slices.Contains([]string{"auto", "always", "never"}, f.colour) {
		return nil, &UsageError{Err: fmt.Errorf("--color %q: want auto, always or never", f.colour)}
	}
	for _, p := range f.failOn {
		if failOnPredicates[p] == nil {
			return nil, &UsageError{Err: fmt.Errorf("--fail-on %q: want prune, crd or namespace", p)}
		}
	}
	for _, c := range f.clusters {
		if err := checkName("cluster", c); err != nil {
			return nil, err
		}
	}
	if f.selector != "" && len(f.clusters) > 0 {
		return nil, &UsageError{Err: errors.New("--cluster and --selector: give one of them")}
	}
	for _, kc := range f.kubeconfigs {
		c, p, ok := strings.Cut(kc, "=")
		if !ok || p == "" {
			return nil, &UsageError{Err: fmt.Errorf("--kubeconfig %q: want CLUSTER=PATH", kc)}
		}
		if err := checkName("cluster", c); err != nil {
			return nil, err
		}
	}
	if f.selector == "" {
		return nil, nil
	}
	sel, err := labels.Parse(f.selector)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--selector %q: %w", f.selector, err)}
	}
	return sel, nil
}

func (f *diffFlags) run(ctx context.Context, out, errOut io.Writer) error {
	sel, err := f.check()
	if err != nil {
		return err
	}
	fail := func(err error) error { return &ExitStatusError{Code: ExitDiffError, Msg: "diff: " + err.Error()} }
	r, err := git.PlainOpenWithOptions(f.repo, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return fail(fmt.Errorf("open repository %s: %w", f.repo, err))
	}
	tmp, err := os.MkdirTemp("", "outpost-diff-")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	baseCommit, err := f.baseCommit(r)
	if err != nil {
		return fail(err)
	}
	baseDir, err := exportCommit(ctx, baseCommit, tmp, "base")
	if err != nil {
		return fail(err)
	}
	headDir, headName, err := f.headDir(ctx, r, tmp)
	if err != nil {
		return fail(err)
	}
	live, err := f.planners()
	if err != nil {
		return fail(err)
	}
	charts, err := f.chartFetcher(tmp, errOut)
	if err != nil {
		return fail(err)
	}
	res, err := fleetdiff.Compute(ctx, baseDir, headDir, fleetdiff.Options{
		BaseName: shortHash(baseCommit.Hash), HeadName: headName, Clusters: f.clusters, Selector: sel, Live: live,
		Charts: charts,
	})
	if err != nil {
		return fail(err)
	}
	if err := f.write(out, res); err != nil {
		return fail(err)
	}
	return f.exitStatus(res)
}

// planners builds, for each --kubeconfig, a syncer that dry-runs on that cluster.
func (f *diffFlags) planners() (map[string]fleetdiff.Planner, error) {
	out := map[string]fleetdiff.Planner{}
	for _, kc := range f.kubeconfigs {
		cluster, path, _ := strings.Cut(kc, "=")
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kc, err)
		}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			return nil, fmt.Errorf("cluster %s (%s): %w", cluster, cfg.Host, err)
		}
		s, err := apply.New(apply.Config{Client: c})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cluster, err)
		}
		out[cluster] = s
	}
	return out, nil
}

// chartFetcher returns the fetcher of remote Helm charts: cached in --chart-cache-dir,
// else the user's cache directory, else (no home, or a read-only one, as in some CI
// containers) a directory of this run only; credentials from --chart-credentials-file,
// read and checked now so that a bad file is one clear error rather than one per app.
// The cache directory is made at the first download: a diff without remote charts
// writes nothing there.
func (f *diffFlags) chartFetcher(tmp string, errOut io.Writer) (*lazyFetcher, error) {
	cfg := chart.FetcherConfig{
		CacheDir: f.chartCacheDir, PlainHTTPHosts: f.chartPlainHTTP,
		Logger: slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if f.chartCredentials != "" {
		creds, err := chart.ReadCredentials(f.chartCredentials)
		if err != nil {
			return nil, fmt.Errorf("--chart-credentials-file: %w", err)
		}
		cfg.Credentials = chart.StaticCredentials(creds)
	}
	return &lazyFetcher{cfg: cfg, fallback: filepath.Join(tmp, "charts")}, nil
}

// lazyFetcher makes its chart.Fetcher, and so its cache directory, at the first fetch.
type lazyFetcher struct {
	cfg      chart.FetcherConfig
	fallback string // cache directory when the user's cannot be used
	once     sync.Once
	f        *chart.Fetcher
	err      error
}

// Fetch implements render.ChartFetcher.
func (l *lazyFetcher) Fetch(ctx context.Context, ref chart.Ref) ([]byte, error) {
	l.once.Do(func() { l.f, l.err = l.open() })
	if l.err != nil {
		return nil, &chart.FetchError{Ref: ref, Err: l.err}
	}
	return l.f.Fetch(ctx, ref)
}

func (l *lazyFetcher) open() (*chart.Fetcher, error) {
	cfg := l.cfg
	if cfg.CacheDir != "" {
		f, err := chart.NewFetcher(cfg)
		if err != nil {
			return nil, fmt.Errorf("--chart-cache-dir: %w", err)
		}
		return f, nil
	}
	if base, err := os.UserCacheDir(); err == nil {
		cfg.CacheDir = filepath.Join(base, "outpost", "charts")
		if f, err := chart.NewFetcher(cfg); err == nil {
			return f, nil
		}
	}
	cfg.CacheDir = l.fallback
	return chart.NewFetcher(cfg)
}

// exitStatus turns the result into the command's exit code.
func (f *diffFlags) exitStatus(res *fleetdiff.Result) error {
	if res.HeadErrors() {
		return &ExitStatusError{Code: ExitDiffError, Msg: "diff: the head revision does not load or render everywhere (errors above)"}
	}
	for _, p := range f.failOn {
		if res.Has(failOnPredicates[p]) {
			return &ExitStatusError{Code: ExitDiffPolicy, Msg: fmt.Sprintf("diff: the change includes a %s change (--fail-on %s)", p, p)}
		}
	}
	if res.Changes() {
		return &ExitStatusError{Code: ExitDiffChanges}
	}
	return nil
}

func (f *diffFlags) write(out io.Writer, res *fleetdiff.Result) error {
	switch f.output {
	case "json":
		return fleetdiff.WriteJSON(out, res)
	case "markdown":
		return fleetdiff.WriteMarkdown(out, res)
	}
	colour := f.colour == "always"
	if f.colour == "auto" {
		if file, ok := out.(*os.File); ok && term.IsTerminal(int(file.Fd())) && os.Getenv("NO_COLOR") == "" {
			colour = true
		}
	}
	return fleetdiff.WriteText(out, res, colour)
}

// baseCommit resolves --base, or the merge base of HEAD with the followed branch.
func (f *diffFlags) baseCommit(r *git.Repository) (*object.Commit, error) {
	if f.base != "" {
		return resolveCommit(r, f.base)
	}
	head, err := resolveCommit(r, "HEAD")
	if err != nil {
		return nil, err
	}
	branches := []string{f.branch}
	if f.branch == "" {
		branches = []string{"refs/remotes/origin/HEAD", "origin/main", "main", "origin/master", "master"}
	}
	var tried []string
	for _, b := range branches {
		c, err := resolveCommit(r, b)
		if err != nil {
			tried = append(tried, b)
			continue
		}
		bases, err := head.MergeBase(c)
		if err != nil {
			return nil, fmt.Errorf("merge base of HEAD and %s: %w", b, err)
		}
		if len(bases) == 0 {
			return nil, fmt.Errorf("HEAD and %s have no common history: give --base", b)
		}
		return bases[0], nil
	}
	return nil, fmt.Errorf("no followed branch found (tried %s): give --base or --branch", strings.Join(tried, ", "))
}

// headDir returns the directory of the head side: the working tree, or --head
// exported.
func (f *diffFlags) headDir(ctx context.Context, r *git.Repository, tmp string) (string, string, error) {
	if f.head == "" {
		wt, err := r.Worktree()
		if err != nil {
			return "", "", fmt.Errorf("the working tree (a bare repository needs --head): %w", err)
		}
		return wt.Filesystem.Root(), "working tree", nil
	}
	c, err := resolveCommit(r, f.head)
	if err != nil {
		return "", "", err
	}
	dir, err := exportCommit(ctx, c, tmp, "head")
	return dir, shortHash(c.Hash), err
}

func resolveCommit(r *git.Repository, rev string) (*object.Commit, error) {
	h, err := r.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	c, err := r.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	return c, nil
}

// exportCommit writes the commit's tree into tmp/name.
func exportCommit(ctx context.Context, c *object.Commit, tmp, name string) (string, error) {
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("tree of %s: %w", shortHash(c.Hash), err)
	}
	dir := filepath.Join(tmp, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if err := gitobj.Export(ctx, tree, dir); err != nil {
		return "", fmt.Errorf("export %s: %w", shortHash(c.Hash), err)
	}
	return dir, nil
}

func shortHash(h plumbing.Hash) string { return h.String()[:12] }
