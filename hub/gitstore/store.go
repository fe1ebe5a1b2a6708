package gitstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Store is the hub's handle on the GitOps repository. It is safe for concurrent
// use: writes (and fetches) are serialized by one lock, reads of the head's
// Snapshot are lock-free once built, other reads take the lock briefly.
type Store struct {
	cfg    Config
	log    *slog.Logger
	branch plumbing.ReferenceName

	// mu guards repo (go-git repositories are not safe for concurrent use),
	// head and lists, and serializes writes and fetches.
	mu     sync.Mutex
	repo   *git.Repository
	remote *remote // nil for the embedded repository
	head   plumbing.Hash
	lists  map[plumbing.Hash][]appEntry // apps.yaml blob -> its entries (a cache)
	labels map[plumbing.Hash]labels.Set // cluster.yaml blob -> its labels (a cache)
	cache  *treeCache                   // decoded trees of repo; see trees
	loaded map[string]loadedCluster     // cluster -> its last load, for snapshots

	headRev atomic.Pointer[string]   // head, readable without mu
	snap    atomic.Pointer[Snapshot] // snapshot of the newest head built so far
}

// Snapshot is the desired state at one revision. A Snapshot is shared between
// callers: treat it as read-only.
type Snapshot struct {
	// Revision is the commit id.
	Revision string `json:"revision"`
	// Time is the commit's committer time.
	Time time.Time `json:"time"`
	// Clusters are the directories under clusters/, sorted by name.
	Clusters []Cluster `json:"clusters"`
	// Apps are the directories under apps/, sorted.
	Apps []string `json:"apps"`
}

// Cluster returns the cluster with the given name, or nil.
func (s *Snapshot) Cluster(name string) *Cluster {
	i, ok := slices.BinarySearchFunc(s.Clusters, name, func(c Cluster, n string) int {
		switch {
		case c.Name < n:
			return -1
		case c.Name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return &s.Clusters[i]
}

// Cluster is what the repository says about one cluster.
type Cluster struct {
	// Name is the directory clusters/<name>/.
	Name string `json:"name"`
	// Labels are cluster.yaml's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Vars are cluster.yaml's vars.
	Vars map[string]string `json:"vars,omitempty"`
	// Apps are apps.yaml's entries, in file order.
	Apps []AppVersion `json:"apps"`
	// Error is set when the cluster's files do not load with sync/repo (the agent
	// will refuse them too); Labels, Vars and Apps then hold what could be read.
	Error string `json:"error,omitempty"`
}

// App returns the app with the given name, or nil.
func (c *Cluster) App(name string) *AppVersion {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i]
		}
	}
	return nil
}

// AppVersion is one apps.yaml entry.
type AppVersion struct {
	// Name is the app.
	Name string `json:"name"`
	// Version is its desired version.
	Version string `json:"version"`
	// Vars are its vars on this cluster.
	Vars map[string]string `json:"vars,omitempty"`
}

// loadedCluster is a cluster as loaded for a snapshot, with the paths the load
// resolved: a later snapshot where they all resolve the same reuses it.
type loadedCluster struct {
	cl      Cluster
	dirHash plumbing.Hash // of clusters/<name>/ when loaded
	deps    []fileDep
}

// trees returns the cache of decoded trees of the current repository; mu must be
// held.
func (s *Store) trees() *treeCache {
	if s.cache == nil || s.cache.s != s.repo.Storer {
		s.cache = newTreeCache(s.repo.Storer)
	}
	return s.cache
}

// Open opens the repository described by cfg: the embedded repository in
// cfg.Dir (created and seeded when missing) or a local bare clone of cfg.URL
// (created when missing, then fetched; when the fetch fails and a clone exists,
// the store starts from it and logs a warning). log receives the store's log
// lines; nil discards them.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: log, branch: plumbing.NewBranchReferenceName(cfg.Branch), lists: map[plumbing.Hash][]appEntry{},
		labels: map[plumbing.Hash]labels.Set{}}
	if err := s.branch.Validate(); err != nil {
		return nil, &ValidationError{Field: InputBranch, Msg: err.Error()}
	}
	if cfg.URL == "" {
		err = s.openEmbedded(ctx)
	} else {
		err = s.openRemote(ctx)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Head returns the current revision: the commit id of the branch's head.
func (s *Store) Head() string {
	if p := s.headRev.Load(); p != nil {
		return *p
	}
	return ""
}

// Dir returns the directory of the repository on disk.
func (s *Store) Dir() string { return s.cfg.Dir }

// Branch returns the full name of the branch holding desired state.
func (s *Store) Branch() plumbing.ReferenceName { return s.branch }

// Refs returns the references agents see when they fetch the repository from
// the hub (internal/gitserve): HEAD pointing to the branch, and the branch at the
// store's head. Serving the head the store knows, rather than the ref file,
// means agents never see a ref whose objects are not all written yet.
func (s *Store) Refs(ctx context.Context) ([]*plumbing.Reference, error) {
	head := s.Head()
	if head == "" {
		return nil, errors.New("the repository has no commit yet")
	}
	return []*plumbing.Reference{
		plumbing.NewSymbolicReference(plumbing.HEAD, s.branch),
		plumbing.NewHashReference(s.branch, plumbing.NewHash(head)),
	}, nil
}

// setHead records a new head; mu must be held.
func (s *Store) setHead(h plumbing.Hash) {
	s.head = h
	rev := h.String()
	s.headRev.Store(&rev)
}

// Refresh fetches the remote and moves the head to the remote branch's head; it
// returns the old and new head (equal when nothing changed). With the embedded
// repository there is nothing to fetch. The hub calls it on a Git push webhook
// and periodically.
func (s *Store) Refresh(ctx context.Context) (oldRev, newRev string, err error) {
	oldRev, newRev, err = s.refreshLocked(ctx)
	if err == nil && oldRev != newRev && s.cfg.HeadChanged != nil {
		s.cfg.HeadChanged(oldRev, newRev)
	}
	return oldRev, newRev, err
}

func (s *Store) refreshLocked(ctx context.Context) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.head
	if s.remote == nil {
		return old.String(), old.String(), nil
	}
	h, err := s.remote.fetch(ctx)
	if err != nil {
		return old.String(), old.String(), err
	}
	if h != old {
		s.setHead(h)
		s.log.Info("fetched new head", "old", old.String(), "new", h.String())
	}
	if err := s.maybeRepack(); err != nil {
		return old.String(), h.String(), err
	}
	return old.String(), h.String(), nil
}

// maybeRepack repacks the local clone into one pack when it holds more than
// Config.MaxPacks, then reopens it (go-git caches the pack list); mu must be
// held. A failed repack is logged: the clone stays usable.
func (s *Store) maybeRepack() error {
	pos, ok := s.repo.Storer.(storer.PackedObjectStorer)
	if !ok {
		return nil
	}
	packs, err := pos.ObjectPacks()
	if err != nil || len(packs) <= s.cfg.MaxPacks {
		return nil
	}
	start := time.Now()
	if err := s.repo.RepackObjects(&git.RepackConfig{}); err != nil {
		s.log.Warn("repack the local clone", "dir", s.cfg.Dir, "packs", len(packs), "err", err)
	}
	r, err := git.PlainOpen(s.cfg.Dir)
	if err == nil {
		r, err = withObjectCache(r, s.cfg.Dir)
	}
	if err != nil {
		return fmt.Errorf("reopen %s after repacking: %w", s.cfg.Dir, err)
	}
	s.repo = r
	s.remote = newRemote(r, s.cfg, s.branch, s.log)
	s.log.Info("repacked the local clone", "dir", s.cfg.Dir, "packs", len(packs), "duration", time.Since(start))
	return nil
}

// Snapshot returns the desired state at rev, a full commit id, or at the head
// when rev is empty. The head's snapshot is built once per head and cached.
// An unknown rev is a *NotFoundError.
func (s *Store) Snapshot(ctx context.Context, rev string) (*Snapshot, error) {
	if rev == "" {
		rev = s.Head()
	}
	if sn := s.snap.Load(); sn != nil && sn.Revision == strings.ToLower(rev) {
		return sn, nil
	}
	if err := validateRevision(InputRevision, rev); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.commit(plumbing.NewHash(rev))
	if err != nil {
		return nil, err
	}
	if c.Hash != s.head {
		return s.buildSnapshot(ctx, c)
	}
	sn, err := s.buildSnapshot(ctx, c)
	if err != nil {
		return nil, err
	}
	s.snap.Store(sn)
	return sn, nil
}

// Cluster returns one cluster of the head's snapshot, or a *NotFoundError.
func (s *Store) Cluster(ctx context.Context, name string) (*Cluster, error) {
	if err := validateName(InputCluster, name); err != nil {
		return nil, err
	}
	sn, err := s.Snapshot(ctx, "")
	if err != nil {
		return nil, err
	}
	c := sn.Cluster(name)
	if c == nil {
		return nil, &NotFoundError{Kind: KindCluster, Name: name, Detail: "no directory clusters/" + name + "/"}
	}
	return c, nil
}

// commit returns the commit h; mu must be held.
func (s *Store) commit(h plumbing.Hash) (*object.Commit, error) {
	c, err := s.repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, &NotFoundError{Kind: KindRevision, Name: h.String()}
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// buildSnapshot reads every cluster of commit c with sync/repo; mu must be held.
// A cluster whose files (and the apps they name) resolve to the same objects as in
// the last snapshot built is not loaded again: after a commit that touched one
// cluster, a snapshot of N clusters costs N cheap checks and one load.
func (s *Store) buildSnapshot(ctx context.Context, c *object.Commit) (*Snapshot, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	fsys := newTreeFS(s.trees(), tree)
	sn := &Snapshot{Revision: c.Hash.String(), Time: c.Committer.When, Clusters: []Cluster{}, Apps: []string{}}
	names, err := repo.ListClusters(fsys)
	if err != nil && !repo.IsContentError(err) {
		return nil, fmt.Errorf("list clusters at %s: %w", c.Hash, err)
	}
	if err != nil {
		s.log.Warn("ignoring invalid cluster directories", "revision", c.Hash.String(), "err", err)
	}
	loaded := make(map[string]loadedCluster, len(names))
	check := newDepChecker(fsys)
	for _, name := range names {
		dir := clusterDir(name)
		if lc, ok := s.loaded[name]; ok && check.unchanged(dir, lc.dirHash, lc.deps) {
			sn.Clusters = append(sn.Clusters, lc.cl)
			loaded[name] = lc
			continue
		}
		var deps []fileDep
		cl, err := loadCluster(ctx, fsys.recording(&deps, dir), name)
		if err != nil {
			return nil, fmt.Errorf("load cluster %s at %s: %w", name, c.Hash, err)
		}
		sn.Clusters = append(sn.Clusters, cl)
		loaded[name] = loadedCluster{cl: cl, dirHash: s.trees().entryHash(tree, dir), deps: deps}
	}
	s.loaded = loaded
	apps, err := s.trees().subdirs(tree, repo.AppsDir)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if repo.ValidateName(a) == nil {
			sn.Apps = append(sn.Apps, a)
		}
	}
	return sn, nil
}

// loadCluster loads one cluster with sync/repo; a content error is recorded in
// Cluster.Error (with what the single files still say), other errors returned.
func loadCluster(ctx context.Context, fsys treeFS, name string) (Cluster, error) {
	cl := Cluster{Name: name, Apps: []AppVersion{}}
	spec, err := repo.Load(ctx, fsys, name)
	if err == nil {
		cl.Labels, cl.Vars = spec.Labels, spec.Vars
		for _, a := range spec.Apps {
			cl.Apps = append(cl.Apps, AppVersion{Name: a.Name, Version: a.Version, Vars: a.Vars})
		}
		return cl, nil
	}
	if !repo.IsContentError(err) {
		return cl, err
	}
	cl.Error = err.Error()
	dir := repo.ClustersDir + "/" + name + "/"
	if data, err := repo.ReadFile(fsys, dir+repo.ClusterFile); err == nil {
		if cfg, err := repo.ParseClusterFile(dir+repo.ClusterFile, data); err == nil {
			cl.Labels, cl.Vars = cfg.Labels, cfg.Vars
		}
	}
	if data, err := repo.ReadFile(fsys, dir+repo.AppsFile); err == nil {
		if list, err := repo.ParseAppsFile(dir+repo.AppsFile, data); err == nil {
			for _, a := range list.Apps {
				cl.Apps = append(cl.Apps, AppVersion{Name: a.Name, Version: a.Version, Vars: a.Vars})
			}
		}
	}
	return cl, nil
}

// appsPath is the repo-relative path of a cluster's apps.yaml.
func appsPath(cluster string) string {
	return repo.ClustersDir + "/" + cluster + "/" + repo.AppsFile
}

// clusterDir is the repo-relative directory of a cluster.
func clusterDir(cluster string) string { return repo.ClustersDir + "/" + cluster }

// appDir is the repo-relative directory of an app.
func appDir(app string) string { return repo.AppsDir + "/" + app }

// listedApps returns the entries of the apps.yaml blob h (cached by blob);
// a file that does not parse lists nothing. mu must be held.
func (s *Store) listedApps(h plumbing.Hash) []appEntry {
	if h.IsZero() {
		return nil
	}
	if l, ok := s.lists[h]; ok {
		return l
	}
	var entries []appEntry
	if blob, err := s.repo.BlobObject(h); err == nil && blob.Size <= repo.MaxFileSize {
		if r, err := blob.Reader(); err == nil {
			data := make([]byte, blob.Size)
			if _, err := io.ReadFull(r, data); err == nil {
				if d, err := parseAppsDoc(data); err == nil {
					entries = d.entries
					for i := range entries { // keep no pointers into the node tree
						entries[i].fingerprint = fingerprint(entries[i].item)
						entries[i].item, entries[i].nameNode, entries[i].verNode = nil, nil, nil
					}
				}
			}
			r.Close()
		}
	}
	if len(s.lists) >= maxListCache {
		clear(s.lists)
	}
	s.lists[h] = entries
	return entries
}

// maxListCache bounds the apps.yaml parse cache.
const maxListCache = 4096

// fingerprint is a canonical text of an apps.yaml entry (name, version, vars),
// to tell whether a commit changed it.
func fingerprint(item *yaml.Node) string {
	var v any
	if err := item.Decode(&v); err != nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Export writes the tree of rev (a full commit id; the head when empty) into dir,
// which must exist and be empty, and returns the commit id and its first parent ("" for
// a root commit). An unknown rev is a *NotFoundError. The export goes through
// gitobj.Export: nothing is written outside dir.
func (s *Store) Export(ctx context.Context, rev, dir string) (commit, parent string, err error) {
	if rev == "" {
		rev = s.Head()
	}
	if err := validateRevision(InputRevision, rev); err != nil {
		return "", "", err
	}
	s.mu.Lock()
	c, err := s.commit(plumbing.NewHash(rev))
	var tree *object.Tree
	if err == nil {
		tree, err = c.Tree()
	}
	s.mu.Unlock()
	if err != nil {
		return "", "", err
	}
	if len(c.ParentHashes) > 0 {
		parent = c.ParentHashes[0].String()
	}
	if err := gitobj.Export(ctx, tree, dir); err != nil {
		return "", "", fmt.Errorf("export %s: %w", c.Hash, err)
	}
	return c.Hash.String(), parent, nil
}
