package benchrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/outpost-gitops/outpost/agent/source"
	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/internal/gitserve"
)

// gitFetch measures fetching one new commit of a repository with a long history and
// many clusters: go-git's depth-1 fetch with agent/source's options, agent/source's
// whole Sync (ls-remote, fetch, export of the tree), and `git fetch --depth 1`,
// all from the hub's Git server (internal/gitserve) over HTTP on loopback.
func gitFetch(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "git-fetch",
		Description: "A repository with a long history (one file per cluster, each commit changing one cluster's " +
			"file), served by internal/gitserve over HTTP on loopback. Per repetition one new commit is pushed, then " +
			"each client fetches it, order rotating: go-git depth-1 fetch with agent/source's options into a " +
			"bare cache; agent/source Sync (ls-remote + that fetch + export of the tree to disk); " +
			"`git fetch --depth 1 --no-tags` into a bare repository. Initial: each client's first depth-1 fetch " +
			"into an empty repository.",
		Scale: fmt.Sprintf("%d commits, %d clusters, %d repetitions", sc.gitCommits, sc.gitClusters, sc.gitReps),
	}
	if _, err := exec.LookPath("git"); err != nil {
		return res, fmt.Errorf("the git CLI is needed for the comparison: %w", err)
	}
	work, err := os.MkdirTemp("", "outpost-bench-git-")
	if err != nil {
		return res, fmt.Errorf("git work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()

	remote, err := newHistoryRepo(filepath.Join(work, "remote.git"), sc.gitClusters)
	if err != nil {
		return res, err
	}
	buildStart := time.Now()
	for range sc.gitCommits {
		if err := remote.commit(); err != nil {
			return res, err
		}
	}
	if err := remote.repo.RepackObjects(&git.RepackConfig{}); err != nil {
		return res, fmt.Errorf("repack %s: %w", remote.dir, err)
	}
	e.log.Info("built git history", "commits", sc.gitCommits, "took", time.Since(buildStart).Round(time.Millisecond))

	url, stopServer, err := serveGit(remote.dir)
	if err != nil {
		return res, err
	}
	defer stopServer()

	gogitFetch := func(ctx context.Context, dir string) error { return goGitFetch(ctx, dir, url) }
	cliFetch := func(ctx context.Context, dir string) error { return cliGitFetch(ctx, dir, url) }
	src, err := source.New(source.Config{URL: url, CacheDir: filepath.Join(work, "source"), Attempts: 1})
	if err != nil {
		return res, fmt.Errorf("agent source: %w", err)
	}
	sourceSync := func(ctx context.Context, _ string) error { _, err := src.Sync(ctx); return err }

	clients := []struct {
		name string
		dir  string
		run  func(context.Context, string) error
	}{
		{"go-git fetch", filepath.Join(work, "gogit.git"), gogitFetch},
		{"agent source sync", "", sourceSync},
		{"git CLI fetch", filepath.Join(work, "cli.git"), cliFetch},
	}
	initial := map[string][]time.Duration{}
	incremental := map[string][]time.Duration{}
	for _, c := range clients {
		start := time.Now()
		if err := c.run(ctx, c.dir); err != nil {
			return res, fmt.Errorf("%s, first fetch: %w", c.name, err)
		}
		initial[c.name] = append(initial[c.name], time.Since(start))
	}
	for rep := range sc.gitReps {
		if err := remote.commit(); err != nil {
			return res, err
		}
		for k := range clients {
			c := clients[(rep+k)%len(clients)]
			start := time.Now()
			if err := c.run(ctx, c.dir); err != nil {
				return res, fmt.Errorf("%s, repetition %d: %w", c.name, rep, err)
			}
			incremental[c.name] = append(incremental[c.name], time.Since(start))
		}
		// A fresh first fetch too, for the clone-like figure.
		for _, c := range clients {
			if c.dir == "" {
				continue
			}
			dir := filepath.Join(work, fmt.Sprintf("fresh-%d-%s", rep, filepath.Base(c.dir)))
			start := time.Now()
			if err := c.run(ctx, dir); err != nil {
				return res, fmt.Errorf("%s, fresh fetch %d: %w", c.name, rep, err)
			}
			initial[c.name] = append(initial[c.name], time.Since(start))
			_ = os.RemoveAll(dir)
		}
	}
	for _, c := range clients {
		res.Figures = append(res.Figures, figure(c.name+", one new commit", "ms", millis(incremental[c.name])))
	}
	for _, c := range clients {
		if c.dir != "" {
			res.Figures = append(res.Figures, figure(c.name+", initial depth 1", "ms", millis(initial[c.name])))
		}
	}
	res.compare("go-git fetch, one new commit", "git CLI fetch, one new commit", "")
	res.compare("agent source sync, one new commit", "git CLI fetch, one new commit", "")
	res.compare("go-git fetch, initial depth 1", "git CLI fetch, initial depth 1", "")
	return res, nil
}

// historyRepo is a bare repository the benchmark writes commits into directly.
type historyRepo struct {
	dir      string
	repo     *git.Repository
	clusters []plumbing.Hash // tree of each cluster's directory
	head     plumbing.Hash
	n        int
}

func newHistoryRepo(dir string, clusters int) (*historyRepo, error) {
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	h := &historyRepo{dir: dir, repo: repo, clusters: make([]plumbing.Hash, clusters)}
	for i := range clusters {
		if h.clusters[i], err = h.clusterTree(i); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// clusterTree writes cluster i's directory at the current commit number.
func (h *historyRepo) clusterTree(i int) (plumbing.Hash, error) {
	var doc bytes.Buffer
	fmt.Fprintf(&doc, "# cluster c-%03d, revision %d\napps:\n", i, h.n)
	for a := range 10 {
		fmt.Fprintf(&doc, "  - name: app-%d\n    path: apps/app-%d\n    version: \"1.%d.%d\"\n", a, a, h.n, a)
	}
	blob, err := gitobj.WriteBlob(h.repo.Storer, doc.Bytes())
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return h.tree([]object.TreeEntry{{Name: "apps.yaml", Mode: filemode.Regular, Hash: blob}})
}

// commit writes one commit changing one cluster's file and moves main to it.
func (h *historyRepo) commit() error {
	h.n++
	i := h.n % len(h.clusters)
	var err error
	if h.clusters[i], err = h.clusterTree(i); err != nil {
		return err
	}
	entries := make([]object.TreeEntry, len(h.clusters))
	for k, t := range h.clusters {
		entries[k] = object.TreeEntry{Name: fmt.Sprintf("c-%03d", k), Mode: filemode.Dir, Hash: t}
	}
	clustersTree, err := h.tree(entries)
	if err != nil {
		return err
	}
	root, err := h.tree([]object.TreeEntry{{Name: "clusters", Mode: filemode.Dir, Hash: clustersTree}})
	if err != nil {
		return err
	}
	sig := object.Signature{Name: "Bench", Email: "bench@example.com", When: time.Unix(1_700_000_000+int64(h.n), 0)}
	c := &object.Commit{Author: sig, Committer: sig, Message: fmt.Sprintf("change cluster c-%03d (%d)\n", i, h.n), TreeHash: root}
	if !h.head.IsZero() {
		c.ParentHashes = []plumbing.Hash{h.head}
	}
	obj := h.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return fmt.Errorf("encode commit %d: %w", h.n, err)
	}
	if h.head, err = h.repo.Storer.SetEncodedObject(obj); err != nil {
		return fmt.Errorf("store commit %d: %w", h.n, err)
	}
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), h.head)
	if err := h.repo.Storer.SetReference(ref); err != nil {
		return fmt.Errorf("move main to commit %d: %w", h.n, err)
	}
	return h.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref.Name()))
}

// tree writes a tree of entries (in Git's order, whatever their order here).
func (h *historyRepo) tree(entries []object.TreeEntry) (plumbing.Hash, error) {
	t, err := gitobj.WriteTree(h.repo.Storer, entries)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write tree: %w", err)
	}
	return t.Hash, nil
}

// serveGit serves the bare repository dir with internal/gitserve on a loopback port.
func serveGit(dir string) (url string, stop func(), err error) {
	h, err := gitserve.New(gitserve.Config{Dir: dir, Authorize: gitserve.AllowAll}, nil)
	if err != nil {
		return "", nil, fmt.Errorf("git server for %s: %w", dir, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("git server listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/repo.git", func() { _ = srv.Close() }, nil
}

// goGitFetch fetches main at depth 1 into the bare repository dir, with the options
// of agent/source.
func goGitFetch(ctx context.Context, dir, url string) error {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	_ = repo.DeleteRemote("origin")
	if _, err := repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return fmt.Errorf("remote of %s: %w", dir, err)
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{"+refs/heads/main:refs/remotes/origin/main"},
		Depth: 1, Force: true, Tags: git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("go-git fetch %s: %w", url, err)
	}
	return nil
}

// cliGitFetch runs `git fetch --depth 1` of main into the bare repository dir.
func cliGitFetch(ctx context.Context, dir, url string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := runGit(ctx, "", "init", "--quiet", "--bare", dir); err != nil {
			return err
		}
	}
	return runGit(ctx, dir, "fetch", "--quiet", "--depth", "1", "--no-tags", url, "+refs/heads/main:refs/remotes/origin/main")
}

func runGit(ctx context.Context, dir string, args ...string) error {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %v: %w: %s", args, err, lastLines(out.String(), 5))
	}
	return nil
}
