package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// HistoryEntry is one commit that changed a cluster's desired state.
type HistoryEntry struct {
	// Revision is the commit id.
	Revision string `json:"revision"`
	// Author is who made the change.
	Author Author `json:"author"`
	// Time is the author time.
	Time time.Time `json:"time"`
	// Message is the commit message without trailing newlines.
	Message string `json:"message"`
	// Before is, when History was asked about one app, the app's version before
	// the commit; empty when it was not listed.
	Before string `json:"before,omitempty"`
	// After is, when History was asked about one app, the app's version after the
	// commit; empty when it is not listed any more.
	After string `json:"after,omitempty"`
}

// History returns the newest commits, at most limit (0: DefaultHistoryLimit,
// at most MaxHistoryLimit), that changed cluster's desired state, newest first:
// with app empty, commits changing anything under clusters/<cluster>/; with an
// app, commits changing that app's entry in the cluster's apps.yaml or
// anything under apps/<app>/ (then Before and After carry the app's version).
// A merge is listed only when it differs from every parent, as git log does.
// It looks at most Config.MaxHistoryWalk commits back.
func (s *Store) History(ctx context.Context, cluster, app string, limit int) ([]HistoryEntry, error) {
	if err := validateName(InputCluster, cluster); err != nil {
		return nil, err
	}
	if app != "" {
		if err := validateName(InputApp, app); err != nil {
			return nil, err
		}
	}
	switch {
	case limit == 0:
		limit = DefaultHistoryLimit
	case limit < 0 || limit > MaxHistoryLimit:
		return nil, &ValidationError{Field: InputLimit, Msg: fmt.Sprintf("must be between 1 and %d", MaxHistoryLimit)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	head, err := s.commit(s.head)
	if err != nil {
		return nil, err
	}
	key := func(t *object.Tree) string { return s.trees().entryHash(t, clusterDir(cluster)).String() }
	if app != "" {
		key = func(t *object.Tree) string {
			e, _ := s.entryAt(t, cluster, app)
			return e.fingerprint + "|" + s.trees().entryHash(t, appDir(app)).String()
		}
	}
	out := []HistoryEntry{}
	err = s.walk(ctx, head, func(c *object.Commit, tree *object.Tree, parents []*object.Tree) (bool, error) {
		k := key(tree)
		touched := len(parents) == 0 && k != key(nil)
		for _, pt := range parents {
			if key(pt) == k {
				touched = false
				break
			}
			touched = true
		}
		if !touched {
			return true, nil
		}
		h := HistoryEntry{Revision: c.Hash.String(), Author: Author{Name: c.Author.Name, Email: c.Author.Email},
			Time: c.Author.When, Message: strings.TrimRight(c.Message, "\n")}
		if app != "" {
			after, _ := s.entryAt(tree, cluster, app)
			h.After = after.version
			if len(parents) > 0 {
				before, _ := s.entryAt(parents[0], cluster, app)
				h.Before = before.version
			}
		}
		out = append(out, h)
		return len(out) < limit, nil
	})
	return out, err
}

// previousVersion returns the version app had on cluster in the most recent
// commit before base where it was listed with a version other than cur; mu
// must be held.
func (s *Store) previousVersion(ctx context.Context, base *object.Commit, cluster, app, cur string) (string, error) {
	prev := ""
	err := s.walk(ctx, base, func(_ *object.Commit, tree *object.Tree, _ []*object.Tree) (bool, error) {
		if v, ok := s.versionAt(tree, cluster, app); ok && v != cur {
			prev = v
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	if prev == "" {
		return "", &NotFoundError{Kind: KindPreviousVersion, Name: app, Cluster: cluster,
			Detail: fmt.Sprintf("no earlier commit lists a version other than %s", cur)}
	}
	return prev, nil
}

// walk calls fn for the commits reachable from start, newest committer time
// first, with each commit's tree and its parents' trees, until fn returns false
// or Config.MaxHistoryWalk commits were seen; mu must be held.
func (s *Store) walk(ctx context.Context, start *object.Commit, fn func(c *object.Commit, tree *object.Tree, parents []*object.Tree) (bool, error)) error {
	iter := object.NewCommitIterCTime(start, nil, nil)
	defer iter.Close()
	for n := 0; n < s.cfg.MaxHistoryWalk; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := iter.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk history: %w", err)
		}
		tree, err := c.Tree()
		if err != nil {
			return fmt.Errorf("read tree of %s: %w", c.Hash, err)
		}
		var parents []*object.Tree
		for _, ph := range c.ParentHashes {
			pc, err := object.GetCommit(s.repo.Storer, ph)
			if err != nil {
				return fmt.Errorf("read commit %s: %w", ph, err)
			}
			pt, err := pc.Tree()
			if err != nil {
				return fmt.Errorf("read tree of %s: %w", ph, err)
			}
			parents = append(parents, pt)
		}
		more, err := fn(c, tree, parents)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// entryAt returns app's apps.yaml entry on cluster in tree (nil: none); mu must
// be held.
func (s *Store) entryAt(t *object.Tree, cluster, app string) (appEntry, bool) {
	if t == nil {
		return appEntry{}, false
	}
	for _, e := range s.listedApps(s.trees().entryHash(t, appsPath(cluster))) {
		if e.name == app {
			return e, true
		}
	}
	return appEntry{}, false
}

// Changed returns, sorted, the clusters whose desired state differs between
// the revisions oldRev and newRev (full commit ids): a cluster whose directory
// changed (or appeared, or went away), and every cluster that lists, at either
// revision, an app whose directory apps/<app>/ changed. The hub wakes only these
// clusters' long-polls. An unknown revision is a *NotFoundError.
func (s *Store) Changed(ctx context.Context, oldRev, newRev string) ([]string, error) {
	if err := firstError(validateRevision(InputOldRev, oldRev), validateRevision(InputNewRev, newRev)); err != nil {
		return nil, err
	}
	if oldRev == "" || newRev == "" {
		return nil, &ValidationError{Field: InputRevision, Msg: "both revisions are required"}
	}
	if strings.EqualFold(oldRev, newRev) {
		return []string{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.summary(plumbing.NewHash(oldRev))
	if err != nil {
		return nil, err
	}
	cur, err := s.summary(plumbing.NewHash(newRev))
	if err != nil {
		return nil, err
	}
	if len(changedKeys(old.apps, cur.apps)) > 0 {
		s.fillListed(&old)
		s.fillListed(&cur)
	}
	return changedClusters(old.treeSummary, cur.treeSummary), nil
}

// revSummary is a treeSummary with the tree fillListed reads.
type revSummary struct {
	treeSummary
	tree *object.Tree
}

// summary reads the cluster and app directory hashes at rev (two tree reads,
// whatever the size of the fleet); mu must be held.
func (s *Store) summary(rev plumbing.Hash) (revSummary, error) {
	c, err := s.commit(rev)
	if err != nil {
		return revSummary{}, err
	}
	tree, err := c.Tree()
	if err != nil {
		return revSummary{}, fmt.Errorf("read tree of %s: %w", rev, err)
	}
	sum := revSummary{
		treeSummary: treeSummary{clusters: map[string]string{}, apps: map[string]string{}, listed: map[string][]string{}},
		tree:        tree,
	}
	for dir, into := range map[string]map[string]string{"clusters": sum.clusters, "apps": sum.apps} {
		sub, err := s.trees().dir(tree, dir)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			continue
		}
		if err != nil {
			return revSummary{}, fmt.Errorf("read %s at %s: %w", dir, rev, err)
		}
		for _, e := range sub.Entries {
			into[e.Name] = e.Hash.String()
		}
	}
	return sum, nil
}

// fillListed parses every cluster's apps.yaml (cached by blob); only needed when
// an app's directory changed. mu must be held.
func (s *Store) fillListed(sum *revSummary) {
	for name := range sum.clusters {
		for _, e := range s.listedApps(s.trees().entryHash(sum.tree, appsPath(name))) {
			sum.listed[name] = append(sum.listed[name], e.name)
		}
	}
}

// treeSummary is what Changed compares between two revisions.
type treeSummary struct {
	clusters map[string]string   // cluster -> hash of clusters/<cluster>/
	apps     map[string]string   // app -> hash of apps/<app>/
	listed   map[string][]string // cluster -> the apps its apps.yaml lists
}

// changedClusters is the pure core of Changed.
func changedClusters(old, cur treeSummary) []string {
	affected := map[string]bool{}
	for _, c := range changedKeys(old.clusters, cur.clusters) {
		affected[c] = true
	}
	apps := changedKeys(old.apps, cur.apps)
	for _, listed := range []map[string][]string{old.listed, cur.listed} {
		for c, names := range listed {
			if slices.ContainsFunc(names, func(a string) bool { return slices.Contains(apps, a) }) {
				affected[c] = true
			}
		}
	}
	out := make([]string, 0, len(affected))
	for c := range affected {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// changedKeys returns the keys whose values differ between a and b (including
// keys present in only one of them).
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
