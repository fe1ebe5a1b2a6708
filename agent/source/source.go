package source

import (
	"compress/flate"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Limits on an exported revision, so a hostile or broken repository cannot fill the disk.
const (
	// MaxExportBytes bounds the total size of the files of one revision.
	MaxExportBytes = 256 << 20
	// MaxExportFiles bounds the number of files of one revision (a 10 000-cluster
	// fleet has two files per cluster plus its apps).
	MaxExportFiles = 100_000
)

// Config configures a Source. Defaults are applied by New.
type Config struct {
	// URL is the remote (https://, http://, ssh://, user@host:path, file://).
	URL string
	// Branch is the branch to follow. Default "main".
	Branch string
	// Auth returns the credentials for each attempt (nil for none); it is called on
	// every request so rotated secrets are picked up.
	Auth func() (transport.AuthMethod, error)
	// CacheDir holds the bare repository and the exported revisions.
	CacheDir string
	// Cluster, when set, leaves the other clusters' directories (clusters/<other>/)
	// out of the exported revisions: an agent reads only its own (docs/repo-layout.md),
	// so a commit to other clusters writes nothing, and a fleet of thousands does not
	// cost every agent thousands of files. Empty exports everything.
	Cluster string
	// Attempts is how many times a request is tried before UnavailableError. Default 3.
	Attempts int
	// Backoff is the first retry delay, doubled each time. Default 500ms.
	Backoff time.Duration
	// Logger receives retries and fetches. Default: discard.
	Logger *slog.Logger
}

// Revision is one exported commit of the branch.
type Revision struct {
	// SHA is the commit hash.
	SHA string `json:"sha"`
	// Dir is the directory holding the commit's files. It stays as it is until the
	// second Sync after the one that returned it (the two newest revisions are kept).
	Dir string `json:"dir"`
	// Time is the commit time.
	Time time.Time `json:"time"`
	// Message is the commit message's first line.
	Message string `json:"message"`
	// Source is the commit of the GitOps repository this revision shows: SHA, or,
	// when the hub served this cluster's view of the repository (a commit made for
	// it), the commit the view was made of. It is what the agent reports.
	Source string `json:"source"`
}

// UnavailableError means the remote could not be reached or refused the request after
// all retries. The caller keeps the last good revision and must not prune.
type UnavailableError struct {
	// URL is the remote, with any password redacted.
	URL string
	// Op is the operation that failed: "list" or "fetch".
	Op string
	// Err is the last failure.
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("git source %s unavailable (%s): %v", e.URL, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Source follows one branch of a Git remote.
type Source struct {
	cfg   Config
	repo  *git.Repository
	store *filesystem.Storage // repo's storage, closed by Close
	mu    sync.Mutex          // serializes fetch and export
	last  *Revision

	afterHead func()                  // tests: runs between the ref listing and the fetch
	wrote     func(name string) error // tests: runs before each exported file is written
}

// New opens (or initialises) the cache and returns a Source. It makes no request.
func New(cfg Config) (*Source, error) {
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auth == nil {
		cfg.Auth = func() (transport.AuthMethod, error) { return nil, nil }
	}
	if cfg.URL == "" || cfg.CacheDir == "" {
		return nil, errors.New("git source: URL and cache directory are required")
	}
	if err := prepareCacheDir(cfg.CacheDir); err != nil {
		return nil, err
	}
	cfg.URL, cfg.Auth = splitUserinfo(cfg.URL, cfg.Auth)
	s := &Source{cfg: cfg}
	if err := s.openCache(); err != nil {
		return nil, err
	}
	return s, nil
}

// CacheDirError is a cache directory the agent refuses: anything it renders and applies
// comes from there, so nobody else may be able to write into it.
type CacheDirError struct {
	// Dir is the directory.
	Dir string
	// Reason says what is wrong with it.
	Reason string
}

func (e *CacheDirError) Error() string {
	return fmt.Sprintf("cache directory %s: %s (use a directory only the agent's user can write, or let the agent create it: --cache-dir)", e.Dir, e.Reason)
}

// prepareCacheDir creates dir (and missing parents) with mode 0700, and refuses an
// existing one that is not a directory, is owned by another user, or is writable by
// group or others: another local user could otherwise plant manifests the agent renders
// with its credentials.
func prepareCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("git source: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("git source: %w", err)
	}
	if !info.IsDir() {
		return &CacheDirError{Dir: dir, Reason: "not a directory (a symlink is refused too)"}
	}
	if info.Mode().Perm()&0o022 != 0 {
		return &CacheDirError{Dir: dir, Reason: fmt.Sprintf("mode %04o lets group or others write", info.Mode().Perm())}
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return &CacheDirError{Dir: dir, Reason: fmt.Sprintf("owned by uid %d, not by the agent's uid %d", st.Uid, os.Geteuid())}
	}
	return nil
}

// splitUserinfo moves credentials out of an http(s) URL into the auth callback, so
// that the URL stored in the cache's configuration carries none; credentials given
// by the callback (files, flags) win.
func splitUserinfo(raw string, auth func() (transport.AuthMethod, error)) (string, func() (transport.AuthMethod, error)) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return raw, auth
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	u.User = nil
	return u.String(), func() (transport.AuthMethod, error) {
		a, err := auth()
		if err != nil || a != nil {
			return a, err
		}
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	}
}

// Cache tuning: every depth-1 fetch adds a pack file to the cache, and every object
// read looks through them all, opening the one that has it.
const (
	// maxPacks is the number of pack files past which the cache starts afresh before
	// the next fetch (which then brings the tip whole, and the next export is whole).
	maxPacks = 32
	// openPacks pack files stay open between reads.
	openPacks = 16
	// objectCacheBytes bounds the decoded objects kept in memory.
	objectCacheBytes = 8 * cache.MiByte
)

// openCache opens (or initialises) the bare repository of the cache.
func (s *Source) openCache() error {
	bare := filepath.Join(s.cfg.CacheDir, "repo.git")
	st := filesystem.NewStorageWithOptions(osfs.New(bare), cache.NewObjectLRU(objectCacheBytes),
		filesystem.Options{MaxOpenDescriptors: openPacks})
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil)
	}
	if err == nil {
		_ = repo.DeleteRemote("origin")
		_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
	}
	if err != nil {
		_ = st.Close()
		return fmt.Errorf("git source cache %s: %w", bare, err)
	}
	s.repo, s.store = repo, st
	return nil
}

// compact starts the cache afresh when fetches have piled up more than maxPacks pack
// files; the exported revisions stay.
func (s *Source) compact() error {
	packs, err := s.store.ObjectPacks()
	if err != nil || len(packs) <= maxPacks {
		return nil
	}
	return s.afresh("packs", len(packs))
}

// afresh removes the cache's repository and opens an empty one; the exported
// revisions stay. args say why, for the log.
func (s *Source) afresh(args ...any) error {
	s.cfg.Logger.Info("git source: starting the cache afresh", args...)
	_ = s.store.Close()
	if err := os.RemoveAll(filepath.Join(s.cfg.CacheDir, "repo.git")); err != nil {
		return fmt.Errorf("git source cache: %w", err)
	}
	return s.openCache()
}

// Close releases the cache's open files.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.Close()
}

func (s *Source) branchRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(s.cfg.Branch)
}

// Head asks the remote for the branch's current commit without fetching objects.
func (s *Source) Head(ctx context.Context) (string, error) {
	var sha string
	err := s.retry(ctx, "list", func(ctx context.Context, auth transport.AuthMethod) error {
		remote := git.NewRemote(memory.NewStorage(), &gitconfig.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
		refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
		if err != nil {
			return err
		}
		for _, r := range refs {
			if r.Name() == s.branchRef() {
				sha = r.Hash().String()
				return nil
			}
		}
		return permanent(fmt.Errorf("branch %q not found", s.cfg.Branch))
	})
	return sha, err
}

// Last returns the last revision Sync exported, or nil.
func (s *Source) Last() *Revision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Sync brings the branch's newest commit into the cache and returns it exported. When
// the remote head equals the last exported revision, nothing is fetched. On failure the
// last good revision stays in place (see Last).
func (s *Source) Sync(ctx context.Context) (*Revision, error) {
	head, err := s.Head(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && s.last.SHA == head {
		return s.last, nil
	}
	if s.afterHead != nil {
		s.afterHead()
	}
	if _, err := s.repo.CommitObject(plumbing.NewHash(head)); err != nil {
		if err := s.compact(); err != nil {
			return nil, err
		}
		if head, err = s.fetchHead(ctx); err != nil {
			return nil, err
		}
		if s.last != nil && s.last.SHA == head {
			return s.last, nil
		}
	}
	rev, err := s.export(ctx, head)
	if err != nil && cacheDamaged(ctx, err) {
		// The cache names objects it cannot read: a fetch cut short (a full disk,
		// a killed process) left a truncated pack or a ref without its objects,
		// which every later fetch answers "already up to date". Start afresh, once.
		if err := s.afresh("reason", "objects of "+head+" unreadable", "err", err.Error()); err != nil {
			return nil, err
		}
		if head, err = s.fetchHead(ctx); err != nil {
			return nil, err
		}
		rev, err = s.export(ctx, head)
	}
	if err != nil {
		return nil, err
	}
	s.last = rev
	return rev, nil
}

// cacheDamaged tells whether an export failed reading the cache's objects (a
// missing object, a truncated or corrupt pack), rather than on the tree's content
// (an *UnsafeTreeError, which a fresh cache would refuse again), on writing the
// export, or because ctx ended.
func cacheDamaged(ctx context.Context, err error) bool {
	var corrupt flate.CorruptInputError
	return ctx.Err() == nil && (errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrHeader) || errors.As(err, &corrupt))
}

// fetchHead fetches the branch and returns the commit fetched. The branch may have
// moved between the listing and the fetch; a depth-1 fetch then brings only the
// newer commit, which is what is exported.
func (s *Source) fetchHead(ctx context.Context) (string, error) {
	if err := s.fetch(ctx); err != nil {
		return "", err
	}
	ref, err := s.repo.Reference(plumbing.NewRemoteReferenceName("origin", s.cfg.Branch), true)
	if err != nil {
		return "", fmt.Errorf("git source: fetched branch %s: %w", s.cfg.Branch, err)
	}
	return ref.Hash().String(), nil
}

func (s *Source) fetch(ctx context.Context) error {
	ref := s.branchRef()
	spec := gitconfig.RefSpec(fmt.Sprintf("+%s:refs/remotes/origin/%s", ref, s.cfg.Branch))
	return s.retry(ctx, "fetch", func(ctx context.Context, auth transport.AuthMethod) error {
		err := s.repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{spec}, Depth: 1, Auth: auth, Force: true, Tags: git.NoTags,
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

// retry runs op up to Attempts times with doubling backoff, and wraps the final
// failure in *UnavailableError.
func (s *Source) retry(ctx context.Context, op string, fn func(context.Context, transport.AuthMethod) error) error {
	delay := s.cfg.Backoff
	var last error
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		auth, err := s.cfg.Auth()
		if err != nil {
			return fmt.Errorf("git credentials: %w", err)
		}
		if last = fn(ctx, auth); last == nil {
			return nil
		}
		var p permanentError
		if errors.As(last, &p) || ctx.Err() != nil {
			break
		}
		s.cfg.Logger.Warn("git request failed, retrying", "op", op, "url", redact(s.cfg.URL), "attempt", attempt, "err", scrub(last, s.cfg.URL))
		if attempt == s.cfg.Attempts {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay *= 2
	}
	var p permanentError
	if errors.As(last, &p) {
		last = p.error
	}
	return &UnavailableError{URL: redact(s.cfg.URL), Op: op, Err: scrub(last, s.cfg.URL)}
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// scrub removes the raw URL (which may hold credentials) from an error's text.
func scrub(err error, raw string) error {
	if err == nil || redact(raw) == raw {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, redact(raw)))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
