package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Trailer is one "Key: value" line at the end of a commit message.
type Trailer struct {
	// Key is the trailer's name, e.g. Outpost-Rollout.
	Key string
	// Value is its value, one line.
	Value string
}

// EachRequest sets one app to a version of its own on each of several clusters, in
// one commit: what a rollout writes (a wave, or the rollback of every cluster it
// touched).
type EachRequest struct {
	// App is the app.
	App string
	// Targets is, per cluster, the version to set; "" removes the app from the
	// cluster's apps.yaml.
	Targets map[string]string
	// Expect, when set for a cluster, is the version the app must have there now
	// ("" for not listed) for the cluster to be changed: a cluster holding another
	// version is left alone and listed in EachResult.Conflicts. A cluster that
	// already holds its target is unchanged, never a conflict.
	Expect map[string]string
	// Subject is the commit message's first line.
	Subject string
	// Trailers end the commit message, in order.
	Trailers []Trailer
}

// EachConflict is a cluster an EachRequest left alone.
type EachConflict struct {
	// Cluster is the cluster.
	Cluster string
	// Expected is the version the request expected there.
	Expected string
	// Found is the version there.
	Found string
}

// EachResult says what SetEach did.
type EachResult struct {
	WriteResult
	// Changes has one entry per cluster changed or already at its target, sorted.
	Changes []ClusterChange
	// Conflicts are the clusters left alone, sorted.
	Conflicts []EachConflict
}

// SetEach writes req as one commit authored by author: every cluster of
// req.Targets whose current version is its Expect (or that has no Expect) gets its
// target version. A cluster or app directory that does not exist fails the whole
// write (a *NotFoundError), as does an edit sync/repo would reject. Nothing to
// change commits nothing.
func (s *Store) SetEach(ctx context.Context, req EachRequest, author Author) (*EachResult, error) {
	if err := validateName(InputApp, req.App); err != nil {
		return nil, err
	}
	if len(req.Targets) == 0 || len(req.Targets) > MaxBulkClusters {
		return nil, &ValidationError{Field: InputClusters, Msg: fmt.Sprintf("names %d clusters; give 1 to %d", len(req.Targets), MaxBulkClusters)}
	}
	for c, v := range req.Targets {
		if err := validateName(InputCluster, c); err != nil {
			return nil, err
		}
		if v != "" {
			if err := validateVersion(v); err != nil {
				return nil, err
			}
		}
	}
	if req.Subject == "" || strings.ContainsAny(req.Subject, "\r\n") {
		return nil, errors.New("gitstore: SetEach needs a one-line subject")
	}
	for _, t := range req.Trailers {
		if t.Key == "" || strings.ContainsAny(t.Key+t.Value, "\r\n") || strings.Contains(t.Key, ":") {
			return nil, fmt.Errorf("gitstore: bad trailer %q: %q", t.Key, t.Value)
		}
	}
	var out EachResult
	res, err := s.write(ctx, author, "", change{
		cluster: fmt.Sprintf("%d clusters", len(req.Targets)),
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			p, changes, conflicts, err := s.eachPlan(base, req)
			out.Changes, out.Conflicts = changes, conflicts
			return p, err
		},
	})
	if err != nil {
		return nil, err
	}
	out.WriteResult = *res
	return &out, nil
}

// eachPlan computes the edits of SetEach at base; mu must be held.
func (s *Store) eachPlan(base *object.Commit, req EachRequest) (*plan, []ClusterChange, []EachConflict, error) {
	tree, err := base.Tree()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
	}
	p := &plan{edits: map[string]gitobj.Edit{}}
	var changes []ClusterChange
	var conflicts []EachConflict
	for _, c := range slices.Sorted(maps.Keys(req.Targets)) {
		if err := s.requireDir(tree, clusterDir(c), KindCluster, c); err != nil {
			return nil, nil, nil, err
		}
		target := req.Targets[c]
		cur, _ := s.versionAt(tree, c, req.App)
		if want, ok := req.Expect[c]; ok && cur != want && cur != target {
			conflicts = append(conflicts, EachConflict{Cluster: c, Expected: want, Found: cur})
			continue
		}
		cp, err := s.editApps(base, c, AppsEdit{App: req.App, Version: target, Remove: target == ""}, "")
		var nf *NotFoundError
		if target == "" && errors.As(err, &nf) && nf.Kind == KindApp {
			// Already not listed: nothing to remove.
			changes = append(changes, ClusterChange{Cluster: c, Before: "", After: ""})
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		changes = append(changes, ClusterChange{Cluster: c, Before: cp.before, After: cp.after, Changed: len(cp.edits) > 0})
		for path, ed := range cp.edits {
			p.edits[path] = ed
			p.validateClusters = append(p.validateClusters, c)
		}
	}
	p.message = eachMessage(req, changes, conflicts)
	return p, changes, conflicts, nil
}

// eachMessage is SetEach's commit message: the subject, one line per changed
// cluster (bounded), the conflicts, then the trailers.
func eachMessage(req EachRequest, changes []ClusterChange, conflicts []EachConflict) string {
	var b strings.Builder
	b.WriteString(req.Subject)
	b.WriteString("\n\n")
	n := 0
	for _, c := range changes {
		if !c.Changed {
			continue
		}
		if n == maxMessageClusters {
			b.WriteString("... and more\n")
			break
		}
		n++
		fmt.Fprintf(&b, "%s: %s -> %s\n", c.Cluster, orNone(c.Before), orNone(c.After))
	}
	for i, c := range conflicts {
		if i == maxMessageClusters {
			break
		}
		fmt.Fprintf(&b, "%s: left at %s (expected %s)\n", c.Cluster, orNone(c.Found), orNone(c.Expected))
	}
	if len(req.Trailers) > 0 {
		b.WriteString("\n")
		for _, t := range req.Trailers {
			fmt.Fprintf(&b, "%s: %s\n", t.Key, t.Value)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Trailers returns the trailers of a commit message: the "Key: value" lines of its
// last paragraph.
func Trailers(message string) []Trailer {
	paras := strings.Split(strings.TrimRight(message, "\n"), "\n\n")
	if len(paras) < 2 {
		return nil
	}
	var out []Trailer
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil
		}
		out = append(out, Trailer{Key: k, Value: v})
	}
	return out
}

// hasTrailers reports whether message's trailers include every one of want.
func hasTrailers(message string, want []Trailer) bool {
	have := Trailers(message)
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// FindCommit returns the newest commit between the head and since (since
// excluded; the whole history walk limit when since is "") whose message carries
// every trailer of want, or "" when there is none.
func (s *Store) FindCommit(ctx context.Context, since string, want []Trailer) (string, error) {
	if since != "" {
		if err := validateRevision(InputRevision, since); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	head, err := s.commit(s.head)
	if err != nil {
		return "", err
	}
	stop := plumbing.NewHash(since)
	iter := object.NewCommitIterCTime(head, nil, nil)
	defer iter.Close()
	for n := 0; n < s.cfg.MaxHistoryWalk; n++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		c, err := iter.Next()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("walk history: %w", err)
		}
		if since != "" && c.Hash == stop {
			return "", nil
		}
		if hasTrailers(c.Message, want) {
			return c.Hash.String(), nil
		}
	}
	return "", nil
}

// IsAncestor reports whether commit ancestor is rev or an ancestor of it. A
// revision the repository does not have is a *NotFoundError.
func (s *Store) IsAncestor(ctx context.Context, ancestor, rev string) (bool, error) {
	if err := firstError(validateRevision(InputRevision, ancestor), validateRevision(InputRevision, rev)); err != nil {
		return false, err
	}
	if strings.EqualFold(ancestor, rev) {
		return true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.commit(plumbing.NewHash(ancestor))
	if err != nil {
		return false, err
	}
	r, err := s.commit(plumbing.NewHash(rev))
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := a.IsAncestor(r)
	if err != nil {
		return false, fmt.Errorf("is %s an ancestor of %s: %w", ancestor, rev, err)
	}
	return ok, nil
}

// RolloutPolicy reads and validates rollouts/<app>.yaml at rev ("" for the head).
// A missing file is a *NotFoundError of KindRolloutPolicy; an invalid one a
// *ContentError naming the file, line and field.
func (s *Store) RolloutPolicy(ctx context.Context, rev, app string) (*repo.RolloutPolicy, string, error) {
	if err := validateName(InputApp, app); err != nil {
		return nil, "", err
	}
	if rev == "" {
		rev = s.Head()
	}
	if err := validateRevision(InputRevision, rev); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.commit(plumbing.NewHash(rev))
	if err != nil {
		return nil, "", err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, "", fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	file := repo.RolloutPath(app)
	data, found, err := s.trees().readBlob(tree, file, repo.MaxFileSize)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", &NotFoundError{Kind: KindRolloutPolicy, Name: app, Detail: "no file " + file}
	}
	p, err := repo.ParseRolloutFile(file, data)
	if err != nil {
		return nil, "", &ContentError{File: file, Msg: err.Error(), Err: err}
	}
	return p, c.Hash.String(), nil
}
