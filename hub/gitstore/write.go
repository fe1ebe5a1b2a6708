package gitstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	yaml "go.yaml.in/yaml/v3"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// WriteResult says what a write did.
type WriteResult struct {
	// Revision is the head after the write: the new commit, or the unchanged head
	// when nothing needed to change.
	Revision string `json:"revision"`
	// Previous is the head the store knew before the write. With a remote, the
	// commits between Previous and Revision may include commits made elsewhere
	// that the write fetched; Changed(Previous, Revision) covers them all.
	Previous string `json:"previous"`
	// Committed is false when the repository already said what the write asked
	// for: no commit was made.
	Committed bool `json:"committed"`
	// Message is the commit message (or the one it would have had).
	Message string `json:"message"`
	// Before is the app's version before the write; empty when it was not listed
	// (and for cluster writes).
	Before string `json:"before,omitempty"`
	// After is the app's version after the write; empty after Unset.
	After string `json:"after,omitempty"`
	// Attempts is the number of commits published, including those that lost a
	// push race (1 without a race, 0 without a commit).
	Attempts int `json:"attempts"`
	// Preview, for a dry run that would change something, is the commit the write
	// would make, stored in the repository but on no branch: diff it against
	// Revision to see what the write would do to every cluster before making it.
	Preview string `json:"preview,omitempty"`
}

// SetVersion sets the version of app on cluster: one commit "set app=version
// on cluster" by author, editing clusters/<cluster>/apps.yaml in place (an app
// not listed yet is appended). ifMatch, when not empty, is the revision the
// caller's decision was based on: if apps.yaml changed since, the write fails
// with ErrStaleRevision. Setting the version it already has commits nothing.
//
// Errors: *ValidationError (bad name, version, author, ifMatch), *ContentError
// (a result sync/repo rejects), *NotFoundError (no clusters/<cluster>/ or apps/<app>/),
// ErrStaleRevision, ErrPushConflict, or a wrapped I/O error. Nothing is
// committed on any error.
func (s *Store) SetVersion(ctx context.Context, cluster, app, version string, author Author, ifMatch string) (*WriteResult, error) {
	if err := firstError(validateName(InputCluster, cluster), validateName(InputApp, app), validateVersion(version)); err != nil {
		return nil, err
	}
	return s.write(ctx, author, ifMatch, change{
		cluster: cluster,
		guard:   appsPath(cluster),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			return s.editApps(base, cluster, AppsEdit{App: app, Version: version},
				fmt.Sprintf("set %s=%s on %s", app, version, cluster))
		},
	})
}

// Unset removes app from cluster's apps.yaml: one commit "unset app on
// cluster". An app the cluster does not list is a *NotFoundError. See
// SetVersion for ifMatch and errors.
func (s *Store) Unset(ctx context.Context, cluster, app string, author Author, ifMatch string) (*WriteResult, error) {
	if err := firstError(validateName(InputCluster, cluster), validateName(InputApp, app)); err != nil {
		return nil, err
	}
	return s.write(ctx, author, ifMatch, change{
		cluster: cluster,
		guard:   appsPath(cluster),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			return s.editApps(base, cluster, AppsEdit{App: app, Remove: true}, fmt.Sprintf("unset %s on %s", app, cluster))
		},
	})
}

// Rollback sets app on cluster back to its previous version: the version it
// had in the most recent earlier commit where it differed from the current one
// (so two rollbacks in a row return to where they started). One commit
// "rollback app on cluster to version". No earlier version in the last
// Config.MaxHistoryWalk commits is a *NotFoundError of Kind KindPreviousVersion.
// See SetVersion for ifMatch and errors.
func (s *Store) Rollback(ctx context.Context, cluster, app string, author Author, ifMatch string) (*WriteResult, error) {
	if err := firstError(validateName(InputCluster, cluster), validateName(InputApp, app)); err != nil {
		return nil, err
	}
	return s.write(ctx, author, ifMatch, change{
		cluster: cluster,
		guard:   appsPath(cluster),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			tree, err := base.Tree()
			if err != nil {
				return nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
			}
			cur, ok := s.versionAt(tree, cluster, app)
			if !ok {
				return nil, &NotFoundError{Kind: KindApp, Name: app, Cluster: cluster, Detail: "not listed in " + appsPath(cluster)}
			}
			prev, err := s.previousVersion(ctx, base, cluster, app, cur)
			if err != nil {
				return nil, err
			}
			return s.editApps(base, cluster, AppsEdit{App: app, Version: prev},
				fmt.Sprintf("rollback %s on %s to %s", app, cluster, prev))
		},
	})
}

// AddCluster creates clusters/<cluster>/ with a cluster.yaml holding labels and
// an apps.yaml listing no app: one commit "add cluster <cluster>". A cluster
// whose directory exists is an *ExistsError. ifMatch guards the cluster's
// directory.
func (s *Store) AddCluster(ctx context.Context, cluster string, labels map[string]string, author Author, ifMatch string) (*WriteResult, error) {
	if err := validateName(InputCluster, cluster); err != nil {
		return nil, err
	}
	clusterYAML, err := clusterFile(labels)
	if err != nil {
		return nil, err
	}
	return s.write(ctx, author, ifMatch, change{
		cluster: cluster,
		guard:   clusterDir(cluster),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			tree, err := base.Tree()
			if err != nil {
				return nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
			}
			if !s.trees().entryHash(tree, clusterDir(cluster)).IsZero() {
				return nil, &ExistsError{Kind: KindCluster, Name: cluster}
			}
			p := &plan{message: "add cluster " + cluster, validate: true, edits: map[string]gitobj.Edit{}}
			for name, data := range map[string][]byte{repo.ClusterFile: clusterYAML, repo.AppsFile: []byte("apps: []\n")} {
				h, err := gitobj.WriteBlob(s.repo.Storer, data)
				if err != nil {
					return nil, fmt.Errorf("write %s/%s: %w", clusterDir(cluster), name, err)
				}
				p.edits[clusterDir(cluster)+"/"+name] = gitobj.Edit{Hash: h, Mode: filemode.Regular}
			}
			return p, nil
		},
	})
}

// RemoveCluster deletes clusters/<cluster>/: one commit "remove cluster
// <cluster>". ifMatch guards the cluster's directory.
func (s *Store) RemoveCluster(ctx context.Context, cluster string, author Author, ifMatch string) (*WriteResult, error) {
	if err := validateName(InputCluster, cluster); err != nil {
		return nil, err
	}
	return s.write(ctx, author, ifMatch, change{
		cluster: cluster,
		guard:   clusterDir(cluster),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			tree, err := base.Tree()
			if err != nil {
				return nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
			}
			if err := s.requireDir(tree, clusterDir(cluster), KindCluster, cluster); err != nil {
				return nil, err
			}
			return &plan{message: "remove cluster " + cluster, edits: map[string]gitobj.Edit{clusterDir(cluster): {Delete: true}}}, nil
		},
	})
}

// clusterFile renders the cluster.yaml of a new cluster.
func clusterFile(labels map[string]string) ([]byte, error) {
	if len(labels) == 0 {
		return []byte("labels: {}\n"), nil
	}
	var b strings.Builder
	b.WriteString("labels:\n")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kv, err := yaml.Marshal(map[string]string{k: labels[k]})
		if err != nil {
			return nil, &ValidationError{Field: InputLabels, Msg: err.Error()}
		}
		b.WriteString("  " + string(kv))
	}
	return []byte(b.String()), nil
}

// change is one write: what it guards and how to compute it from a base commit.
type change struct {
	// cluster is the cluster the write is about; it is validated after the edit.
	cluster string
	// guard is the repo path compared between ifMatch and the base commit.
	guard string
	// check, when set, replaces guard: it compares the tree at ifMatch with the
	// base's and returns an error wrapping ErrStaleRevision when they differ
	// where the write cares. mu is held.
	check func(guard, base *object.Tree) error
	// dryRun computes the plan and answers it without committing.
	dryRun bool
	// apply computes the write from the base commit; it runs again on every
	// attempt, on top of the newest head. It must not change the repository
	// beyond writing objects.
	apply func(ctx context.Context, base *object.Commit) (*plan, error)
}

// plan is the outcome of a change's apply.
type plan struct {
	edits         map[string]gitobj.Edit // by repo path; empty: nothing to commit
	message       string
	before, after string
	validate      bool // load clusters/<cluster> with sync/repo after the edit
	// validateClusters are more clusters to load with sync/repo after the edit
	// (a bulk write's).
	validateClusters []string
}

// headMove is a change of the head, for Config.HeadChanged.
type headMove struct{ old, new string }

// write runs one change: validates, then tries to commit and publish it at most
// Config.MaxAttempts times.
func (s *Store) write(ctx context.Context, author Author, ifMatch string, ch change) (*WriteResult, error) {
	if err := firstError(author.validate(InputAuthorName, InputAuthorEmail), validateRevision(InputIfMatch, ifMatch)); err != nil {
		return nil, err
	}
	start := time.Now()
	res, moved, err := s.writeLocked(ctx, author, strings.ToLower(ifMatch), ch)
	if moved != nil && s.cfg.HeadChanged != nil {
		s.cfg.HeadChanged(moved.old, moved.new)
	}
	if err != nil {
		s.log.Info("write refused", "cluster", ch.cluster, "err", err, "duration", time.Since(start))
		return nil, err
	}
	s.log.Info("write", "message", res.Message, "committed", res.Committed, "revision", res.Revision,
		"author", author.Name, "attempts", res.Attempts, "duration", time.Since(start))
	return res, nil
}

func (s *Store) writeLocked(ctx context.Context, author Author, ifMatch string, ch change) (_ *WriteResult, moved *headMove, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.head
	defer func() {
		if s.head != prev {
			moved = &headMove{old: prev.String(), new: s.head.String()}
		}
	}()
	fetched := false // whether this write fetched the remote already
	// refetch fetches the remote once per write; true when the head moved.
	refetch := func() (bool, error) {
		if s.remote == nil || fetched {
			return false, nil
		}
		fetched = true
		h, err := s.remote.fetch(ctx)
		if err != nil {
			return false, err
		}
		moved := h != s.head
		s.setHead(h)
		return moved, nil
	}
	guardTree, err := s.ifMatchTree(ifMatch, refetch)
	if err != nil {
		return nil, nil, err
	}
	attempts := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		base, err := s.commit(s.head)
		if err != nil {
			return nil, nil, err
		}
		baseTree, err := base.Tree()
		if err != nil {
			return nil, nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
		}
		switch {
		case guardTree == nil:
		case ch.check != nil:
			if err := ch.check(guardTree, baseTree); err != nil {
				return nil, nil, err
			}
		case s.trees().entryHash(guardTree, ch.guard) != s.trees().entryHash(baseTree, ch.guard):
			return nil, nil, fmt.Errorf("%w: %s changed since %s (head is %s)", ErrStaleRevision, ch.guard, ifMatch, s.head)
		}
		p, err := ch.apply(ctx, base)
		if err == nil && ch.dryRun {
			res := &WriteResult{Revision: s.head.String(), Previous: prev.String(), Message: p.message,
				Before: p.before, After: p.after}
			if len(p.edits) > 0 {
				// The commit object, on no ref: what the write would make, for a diff.
				h, err := s.commitPlan(ctx, base, baseTree, ch.cluster, p, author)
				if err != nil {
					return nil, nil, err
				}
				res.Preview = h.String()
			}
			return res, nil, nil
		}
		var h plumbing.Hash
		if err == nil && len(p.edits) > 0 {
			h, err = s.commitPlan(ctx, base, baseTree, ch.cluster, p, author)
		}
		if err != nil || len(p.edits) == 0 {
			// The answer may come from a stale view of the remote (an app added
			// there, a file fixed, the version already changed): look once more
			// before answering.
			if isFinal(err) {
				if again, ferr := refetch(); ferr != nil || again {
					if ferr != nil {
						return nil, nil, ferr
					}
					continue
				}
			}
			if err != nil {
				return nil, nil, err
			}
			return &WriteResult{Revision: s.head.String(), Previous: prev.String(), Message: p.message,
				Before: p.before, After: p.after, Attempts: attempts}, nil, nil
		}
		attempts++
		err = s.publish(ctx, base.Hash, h)
		switch {
		case err == nil:
			s.setHead(h)
			return &WriteResult{Revision: h.String(), Previous: prev.String(), Committed: true, Message: p.message,
				Before: p.before, After: p.after, Attempts: attempts}, nil, nil
		case !errors.Is(err, errRemoteMoved):
			return nil, nil, err
		case attempts >= s.cfg.MaxAttempts:
			return nil, nil, fmt.Errorf("%w: %q lost %d push races", ErrPushConflict, p.message, attempts)
		}
		fetched = true
		s.log.Info("remote moved while pushing; re-applying on the new head", "message", p.message, "attempt", attempts, "head", s.head.String())
	}
}

// ifMatchTree returns the tree at ifMatch, nil for no ifMatch. A revision the
// store does not know (after one fetch) is stale.
func (s *Store) ifMatchTree(ifMatch string, refetch func() (bool, error)) (*object.Tree, error) {
	if ifMatch == "" {
		return nil, nil
	}
	c, err := s.commit(plumbing.NewHash(ifMatch))
	var nf *NotFoundError
	if errors.As(err, &nf) {
		if _, ferr := refetch(); ferr != nil {
			return nil, ferr
		}
		c, err = s.commit(plumbing.NewHash(ifMatch))
	}
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("%w: revision %s is not in the repository's history", ErrStaleRevision, ifMatch)
	}
	if err != nil {
		return nil, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", ifMatch, err)
	}
	return t, nil
}

// commitPlan writes the plan's tree, validates the cluster and writes the
// commit object (not yet referenced by any ref).
func (s *Store) commitPlan(ctx context.Context, base *object.Commit, baseTree *object.Tree, cluster string, p *plan, author Author) (plumbing.Hash, error) {
	treeHash, _, err := writeTree(s.trees(), baseTree, p.edits)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write tree: %w", err)
	}
	var validate []string
	if p.validate {
		validate = append(validate, cluster)
	}
	validate = append(validate, p.validateClusters...)
	if len(validate) > 0 {
		tree, err := object.GetTree(s.repo.Storer, treeHash)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tree %s: %w", treeHash, err)
		}
		for _, cluster := range validate {
			if _, err := repo.Load(ctx, newTreeFS(s.trees(), tree), cluster); err != nil {
				var re *repo.Error
				if errors.As(err, &re) {
					return plumbing.ZeroHash, &ContentError{File: re.File, Msg: "the change would leave cluster " + cluster + " invalid: " + err.Error(), Err: err}
				}
				if repo.IsContentError(err) {
					return plumbing.ZeroHash, &ContentError{File: clusterDir(cluster), Msg: err.Error(), Err: err}
				}
				return plumbing.ZeroHash, fmt.Errorf("validate cluster %s: %w", cluster, err)
			}
		}
	}
	now := time.Now()
	return writeCommit(s.repo.Storer, &object.Commit{
		Author:       object.Signature{Name: author.Name, Email: author.Email, When: now},
		Committer:    object.Signature{Name: s.cfg.Committer.Name, Email: s.cfg.Committer.Email, When: now},
		Message:      p.message + "\n",
		TreeHash:     treeHash,
		ParentHashes: []plumbing.Hash{base.Hash},
	})
}

// writeCommit stores c.
func writeCommit(s interface {
	NewEncodedObject() plumbing.EncodedObject
	SetEncodedObject(plumbing.EncodedObject) (plumbing.Hash, error)
}, c *object.Commit) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write commit: %w", err)
	}
	return h, nil
}

// publish makes commit (a child of base) the branch's head: a push to the
// remote, or a compare-and-swap of the embedded repository's ref. It returns
// errRemoteMoved (with s.head moved to the remote's head) when the remote moved.
func (s *Store) publish(ctx context.Context, base, commit plumbing.Hash) error {
	if s.remote != nil {
		h, err := s.remote.push(ctx, s.repo, base, commit)
		if errors.Is(err, errRemoteMoved) {
			s.setHead(h)
		}
		return err
	}
	ref := plumbing.NewHashReference(s.branch, commit)
	old := plumbing.NewHashReference(s.branch, base)
	if err := s.repo.Storer.CheckAndSetReference(ref, old); err != nil {
		return fmt.Errorf("update %s to %s: %w", s.branch, commit, err)
	}
	return nil
}

// editApps computes the apps.yaml edit of a set, unset or rollback at base.
func (s *Store) editApps(base *object.Commit, cluster string, e AppsEdit, message string) (*plan, error) {
	tree, err := base.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
	}
	if err := s.requireDir(tree, clusterDir(cluster), KindCluster, cluster); err != nil {
		return nil, err
	}
	if !e.Remove {
		if err := s.requireDir(tree, appDir(e.App), KindApp, e.App); err != nil {
			return nil, err
		}
	}
	file := appsPath(cluster)
	data, _, err := s.trees().readBlob(tree, file, repo.MaxFileSize)
	if err != nil {
		return nil, err
	}
	out, ch, err := EditAppsFile(data, e)
	var ce *ContentError
	var nf *NotFoundError
	switch {
	case errors.As(err, &ce) && ce.File == repo.AppsFile:
		ce.File, ce.Msg = file, file+": "+ce.Msg
		return nil, ce
	case errors.As(err, &nf):
		nf.Cluster, nf.Detail = cluster, "not listed in "+file
		return nil, nf
	case err != nil:
		return nil, err
	}
	p := &plan{message: message, before: ch.Before, after: ch.After}
	if !ch.Changed {
		return p, nil
	}
	h, err := gitobj.WriteBlob(s.repo.Storer, out)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", file, err)
	}
	mode := filemode.Regular
	if e, err := s.trees().find(tree, file); err == nil && e.Mode == filemode.Executable {
		mode = e.Mode
	}
	p.edits = map[string]gitobj.Edit{file: {Hash: h, Mode: mode}}
	p.validate = true
	return p, nil
}

// requireDir returns a *NotFoundError unless p is a directory of t; mu must be held.
func (s *Store) requireDir(t *object.Tree, p string, kind Kind, name string) error {
	e, err := s.trees().find(t, p)
	if err != nil || e.Mode != filemode.Dir {
		return &NotFoundError{Kind: kind, Name: name, Detail: "no directory " + p + "/"}
	}
	return nil
}

// versionAt returns app's version in cluster's apps.yaml in tree; mu must be held.
func (s *Store) versionAt(t *object.Tree, cluster, app string) (string, bool) {
	for _, e := range s.listedApps(s.trees().entryHash(t, appsPath(cluster))) {
		if e.name == app && e.hasVersion {
			return e.version, true
		}
	}
	return "", false
}

// isFinal reports whether err is an answer about the content (or nil, for a
// write with nothing to commit), rather than a failure to get one.
func isFinal(err error) bool {
	var ve *ValidationError
	var ce *ContentError
	var nf *NotFoundError
	var ee *ExistsError
	return err == nil || errors.As(err, &ve) || errors.As(err, &ce) || errors.As(err, &nf) || errors.As(err, &ee)
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
