package gitstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Limits of a bulk write.
const (
	// MaxBulkClusters is the most clusters one bulk write names or edits: a
	// longer Clusters list, or a selector matching more, is refused.
	MaxBulkClusters = 1000
	// MaxSelectorLen is the longest label selector, in bytes.
	MaxSelectorLen = 4096
	// maxMessageClusters is the most per-cluster lines a bulk commit message
	// lists; the rest are counted.
	maxMessageClusters = 50
)

// BulkAction is what a bulk write does to the app on every cluster it selects.
type BulkAction string

// The bulk actions: the same edits as SetVersion, Unset and Rollback.
const (
	// BulkSet sets the app's version (adding the app where it is not listed).
	BulkSet BulkAction = "set"
	// BulkUnset removes the app.
	BulkUnset BulkAction = "unset"
	// BulkRollback sets the app back to its previous version on each cluster.
	BulkRollback BulkAction = "rollback"
)

// BulkRequest is one write of one app on many clusters.
type BulkRequest struct {
	// Action is what to do on every selected cluster.
	Action BulkAction `json:"action"`
	// App is the app to change.
	App string `json:"app"`
	// Version is the version to set; required for BulkSet, empty otherwise.
	Version string `json:"version,omitempty"`
	// Selector is a Kubernetes label selector (env=prod,region in (eu,us),!canary)
	// over the labels of clusters/<c>/cluster.yaml, resolved at the revision the
	// write is based on. Empty: no selector.
	Selector string `json:"selector,omitempty"`
	// Clusters are clusters named explicitly; they are selected in addition to
	// those Selector matches. Selector and Clusters must not both be empty.
	Clusters []string `json:"clusters,omitempty"`
	// VarsFrom, with BulkSet, is a cluster whose vars of the app are copied to
	// every selected cluster (replacing theirs), read at the same revision as
	// the rest of the write. Empty: the selected clusters' vars stay.
	VarsFrom string `json:"varsFrom,omitempty"`
	// DryRun computes the changes without committing.
	DryRun bool `json:"dryRun,omitempty"`
	// IfMatch, when set, is the revision the caller decided on: the write fails
	// with ErrStaleRevision when the set of selected clusters or the apps.yaml
	// of any of them changed since.
	IfMatch string `json:"ifMatch,omitempty"`
}

// ClusterChange is the change of a bulk write on one cluster.
type ClusterChange struct {
	// Cluster is the cluster.
	Cluster string `json:"cluster"`
	// Before is the app's version before; empty when it was not listed.
	Before string `json:"before,omitempty"`
	// After is the app's version after; empty after an unset.
	After string `json:"after,omitempty"`
	// Changed is false when the cluster already said what was asked.
	Changed bool `json:"changed"`
}

// BulkResult says what a bulk write did (or, with DryRun, would do).
type BulkResult struct {
	WriteResult
	// DryRun is true when nothing was committed because the request asked so.
	DryRun bool `json:"dryRun,omitempty"`
	// Changes has one entry per selected cluster, sorted by cluster.
	Changes []ClusterChange `json:"changes"`
}

// Bulk applies one action to one app on every cluster req selects, in ONE
// commit authored by author: all of them or none. Any cluster whose edit is
// refused (the app not listed for an unset, no previous version for a
// rollback, a file sync/repo would reject) fails the whole write with an error
// naming that cluster and file. With req.DryRun the result lists the planned
// changes and nothing is committed. A selection where nothing needs to change
// commits nothing.
//
// Errors: *ValidationError (InputAction, InputApp, InputVersion, InputSelector
// for a malformed selector or one that matches no cluster, InputClusters for a
// bad or too long list, InputIfMatch); *NotFoundError for a named cluster
// that does not exist or an app directory missing; *ContentError;
// ErrStaleRevision; ErrPushConflict; or a wrapped I/O error.
func (s *Store) Bulk(ctx context.Context, req BulkRequest, author Author) (*BulkResult, error) {
	sel, err := req.validate()
	if err != nil {
		return nil, err
	}
	var changes []ClusterChange
	desc := req.describe()
	res, err := s.write(ctx, author, req.IfMatch, change{
		cluster: desc,
		dryRun:  req.DryRun,
		check: func(guard, base *object.Tree) error {
			return s.sameSelection(guard, base, req, sel)
		},
		apply: func(ctx context.Context, base *object.Commit) (*plan, error) {
			p, ch, err := s.bulkPlan(ctx, base, req, sel)
			changes = ch
			return p, err
		},
	})
	if err != nil {
		return nil, err
	}
	return &BulkResult{WriteResult: *res, DryRun: req.DryRun, Changes: changes}, nil
}

// validate checks the request's fields and parses its selector (nil when
// empty).
func (req BulkRequest) validate() (labels.Selector, error) {
	switch req.Action {
	case BulkSet:
		if err := validateVersion(req.Version); err != nil {
			return nil, err
		}
	case BulkUnset, BulkRollback:
		if req.Version != "" {
			return nil, &ValidationError{Field: InputVersion, Msg: fmt.Sprintf("must be empty for %s", req.Action)}
		}
	default:
		return nil, &ValidationError{Field: InputAction, Msg: fmt.Sprintf("%q is not one of set, unset, rollback", req.Action)}
	}
	if err := validateName(InputApp, req.App); err != nil {
		return nil, err
	}
	if req.VarsFrom != "" {
		if req.Action != BulkSet {
			return nil, &ValidationError{Field: InputVarsFrom, Msg: fmt.Sprintf("must be empty for %s", req.Action)}
		}
		if err := validateName(InputVarsFrom, req.VarsFrom); err != nil {
			return nil, err
		}
	}
	if len(req.Clusters) > MaxBulkClusters {
		return nil, &ValidationError{Field: InputClusters, Msg: fmt.Sprintf("lists %d clusters, more than the limit of %d", len(req.Clusters), MaxBulkClusters)}
	}
	seen := map[string]bool{}
	for i, c := range req.Clusters {
		if err := repo.ValidateName(c); err != nil {
			return nil, &ValidationError{Field: InputClusters, Msg: fmt.Sprintf("[%d]: cluster %v", i, err), Err: err}
		}
		if seen[c] {
			return nil, &ValidationError{Field: InputClusters, Msg: fmt.Sprintf("[%d]: cluster %q is listed twice", i, c)}
		}
		seen[c] = true
	}
	if req.Selector == "" {
		if len(req.Clusters) == 0 {
			return nil, &ValidationError{Field: InputSelector, Msg: "give a selector or clusters: a bulk write never means every cluster by default"}
		}
		return nil, nil
	}
	if len(req.Selector) > MaxSelectorLen {
		return nil, &ValidationError{Field: InputSelector, Msg: fmt.Sprintf("is %d bytes long, more than the limit of %d", len(req.Selector), MaxSelectorLen)}
	}
	sel, err := labels.Parse(req.Selector)
	if err != nil {
		return nil, &ValidationError{Field: InputSelector, Msg: fmt.Sprintf("%q is not a label selector: %v", req.Selector, err), Err: err}
	}
	if sel.Empty() {
		return nil, &ValidationError{Field: InputSelector, Msg: fmt.Sprintf("%q selects every cluster; name the labels to match", req.Selector)}
	}
	return sel, nil
}

// clusterLabels returns the labels of cluster.yaml of cluster name in tree. A regular
// file's labels are cached by its blob (a selector is matched against every cluster
// of the fleet on each bulk write, and cluster files rarely change); mu must be held.
func (s *Store) clusterLabels(tree *object.Tree, name string) (labels.Set, error) {
	file := clusterDir(name) + "/" + repo.ClusterFile
	var key plumbing.Hash
	if e, err := s.trees().find(tree, file); err == nil && e.Mode.IsFile() && e.Mode != filemode.Symlink {
		key = e.Hash
		if set, ok := s.labels[key]; ok {
			return set, nil
		}
	}
	data, _, err := s.trees().readBlob(tree, file, repo.MaxFileSize)
	if err != nil {
		return nil, err
	}
	cfg, err := repo.ParseClusterFile(file, data)
	if err != nil {
		// Whether it matches cannot be told: refuse rather than guess.
		return nil, &ContentError{File: file, Msg: "cannot match the selector against this cluster's labels: " + err.Error(), Err: err}
	}
	set := labels.Set(cfg.Labels)
	if !key.IsZero() {
		if len(s.labels) >= maxLabelCache {
			clear(s.labels)
		}
		s.labels[key] = set
	}
	return set, nil
}

// maxLabelCache bounds the cluster.yaml labels cache: a fleet of 50 000 clusters and
// then some edits of their labels.
const maxLabelCache = 65536

// describe names the selection for logs: the selector and/or the clusters.
func (req BulkRequest) describe() string {
	var parts []string
	if req.Selector != "" {
		parts = append(parts, "selector "+req.Selector)
	}
	if n := len(req.Clusters); n > 0 {
		parts = append(parts, fmt.Sprintf("%d named clusters", n))
	}
	return strings.Join(parts, " + ")
}

// selectClusters returns, sorted, the clusters of tree that req selects: those
// whose cluster.yaml labels match sel, and the named ones (each must exist).
// mu must be held.
func (s *Store) selectClusters(tree *object.Tree, req BulkRequest, sel labels.Selector) ([]string, error) {
	picked := map[string]bool{}
	for _, c := range req.Clusters {
		if err := s.requireDir(tree, clusterDir(c), KindCluster, c); err != nil {
			return nil, err
		}
		picked[c] = true
	}
	if sel != nil {
		names, err := s.trees().subdirs(tree, repo.ClustersDir)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if repo.ValidateName(name) != nil {
				continue // not a cluster an agent could use; Snapshot ignores it too
			}
			set, err := s.clusterLabels(tree, name)
			if err != nil {
				return nil, err
			}
			if sel.Matches(set) {
				picked[name] = true
			}
		}
	}
	out := make([]string, 0, len(picked))
	for c := range picked {
		out = append(out, c)
	}
	slices.Sort(out)
	switch {
	case len(out) == 0:
		return nil, &ValidationError{Field: InputSelector, Msg: fmt.Sprintf("%q matches no cluster", req.Selector)}
	case len(out) > MaxBulkClusters:
		return nil, &ValidationError{Field: InputSelector, Msg: fmt.Sprintf("%q selects %d clusters, more than the limit of %d", req.Selector, len(out), MaxBulkClusters)}
	}
	return out, nil
}

// sameSelection is the ifMatch check of a bulk write: the selection at the
// ifMatch revision (guard) and at the base are the same clusters, and none of
// their apps.yaml files changed. mu must be held.
func (s *Store) sameSelection(guard, base *object.Tree, req BulkRequest, sel labels.Selector) error {
	then, err := s.selectClusters(guard, req, sel)
	if err != nil {
		return fmt.Errorf("%w: at %s: %w", ErrStaleRevision, req.IfMatch, err)
	}
	now, err := s.selectClusters(base, req, sel)
	if err != nil {
		return err
	}
	if !slices.Equal(then, now) {
		return fmt.Errorf("%w: the clusters selected changed since %s (then %s, now %s)", ErrStaleRevision, req.IfMatch,
			boundedList(then, 10), boundedList(now, 10))
	}
	for _, c := range now {
		if s.trees().entryHash(guard, appsPath(c)) != s.trees().entryHash(base, appsPath(c)) {
			return fmt.Errorf("%w: %s changed since %s", ErrStaleRevision, appsPath(c), req.IfMatch)
		}
	}
	return nil
}

// bulkPlan computes the edits of a bulk write at base; mu must be held.
func (s *Store) bulkPlan(ctx context.Context, base *object.Commit, req BulkRequest, sel labels.Selector) (*plan, []ClusterChange, error) {
	tree, err := base.Tree()
	if err != nil {
		return nil, nil, fmt.Errorf("read tree of %s: %w", base.Hash, err)
	}
	clusters, err := s.selectClusters(tree, req, sel)
	if err != nil {
		return nil, nil, err
	}
	var prev map[string]string
	if req.Action == BulkRollback {
		if prev, err = s.previousVersions(ctx, base, tree, clusters, req.App); err != nil {
			return nil, nil, err
		}
	}
	var vars map[string]string
	if req.VarsFrom != "" {
		if vars, err = s.varsAt(tree, req.VarsFrom, req.App); err != nil {
			return nil, nil, err
		}
	}
	p := &plan{edits: map[string]gitobj.Edit{}}
	changes := make([]ClusterChange, 0, len(clusters))
	for _, c := range clusters {
		e := AppsEdit{App: req.App, Version: req.Version, Remove: req.Action == BulkUnset, SetVars: req.VarsFrom != "", Vars: vars}
		if req.Action == BulkRollback {
			e.Version = prev[c]
		}
		cp, err := s.editApps(base, c, e, "")
		if err != nil {
			return nil, nil, err
		}
		changes = append(changes, ClusterChange{Cluster: c, Before: cp.before, After: cp.after, Changed: len(cp.edits) > 0})
		for path, ed := range cp.edits {
			p.edits[path] = ed
			p.validateClusters = append(p.validateClusters, c)
		}
	}
	p.message = bulkMessage(req, changes)
	return p, changes, nil
}

// varsAt returns the vars of app on cluster in tree; mu must be held.
func (s *Store) varsAt(tree *object.Tree, cluster, app string) (map[string]string, error) {
	if err := s.requireDir(tree, clusterDir(cluster), KindCluster, cluster); err != nil {
		return nil, err
	}
	file := appsPath(cluster)
	data, _, err := s.trees().readBlob(tree, file, repo.MaxFileSize)
	if err != nil {
		return nil, err
	}
	d, err := parseAppsDoc(data)
	if err != nil {
		return nil, &ContentError{File: file, Msg: file + ": " + err.Error(), Err: err}
	}
	i := d.find(app)
	if i < 0 {
		return nil, &NotFoundError{Kind: KindApp, Name: app, Cluster: cluster, Detail: "not listed in " + file + " (to copy its vars)"}
	}
	return entryVars(d.entries[i].item), nil
}

// previousVersions returns, for each cluster, the version the app had in the
// most recent commit before base where it differed from its current one: the
// per-cluster rule of Rollback, found in one walk. mu must be held.
func (s *Store) previousVersions(ctx context.Context, base *object.Commit, tree *object.Tree, clusters []string, app string) (map[string]string, error) {
	cur := map[string]string{}
	for _, c := range clusters {
		if err := s.requireDir(tree, clusterDir(c), KindCluster, c); err != nil {
			return nil, err
		}
		v, ok := s.versionAt(tree, c, app)
		if !ok {
			return nil, &NotFoundError{Kind: KindApp, Name: app, Cluster: c, Detail: "not listed in " + appsPath(c)}
		}
		cur[c] = v
	}
	prev := map[string]string{}
	err := s.walk(ctx, base, func(_ *object.Commit, t *object.Tree, _ []*object.Tree) (bool, error) {
		for _, c := range clusters {
			if _, done := prev[c]; done {
				continue
			}
			if v, ok := s.versionAt(t, c, app); ok && v != cur[c] {
				prev[c] = v
			}
		}
		return len(prev) < len(clusters), nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range clusters {
		if _, ok := prev[c]; !ok {
			return nil, &NotFoundError{Kind: KindPreviousVersion, Name: app, Cluster: c,
				Detail: fmt.Sprintf("no earlier commit lists a version other than %s", cur[c])}
		}
	}
	return prev, nil
}

// bulkMessage is the commit message of a bulk write: a subject naming the
// action and the number of clusters changed, then one line per changed cluster
// (at most maxMessageClusters; the rest counted).
func bulkMessage(req BulkRequest, changes []ClusterChange) string {
	var changed []ClusterChange
	for _, c := range changes {
		if c.Changed {
			changed = append(changed, c)
		}
	}
	n := fmt.Sprintf("%d clusters", len(changed))
	if len(changed) == 1 {
		n = "1 cluster"
	}
	var b strings.Builder
	switch req.Action {
	case BulkSet:
		fmt.Fprintf(&b, "set %s=%s on %s", req.App, req.Version, n)
	case BulkUnset:
		fmt.Fprintf(&b, "unset %s on %s", req.App, n)
	case BulkRollback:
		fmt.Fprintf(&b, "rollback %s on %s", req.App, n)
	}
	b.WriteString("\n\n")
	if req.Selector != "" {
		fmt.Fprintf(&b, "Selector: %s\n", req.Selector)
	}
	if req.VarsFrom != "" {
		fmt.Fprintf(&b, "Vars-From: %s\n", req.VarsFrom)
	}
	if len(req.Clusters) > 0 {
		fmt.Fprintf(&b, "Clusters: %s\n", boundedList(req.Clusters, maxMessageClusters))
	}
	b.WriteString("\n")
	for i, c := range changed {
		if i == maxMessageClusters {
			fmt.Fprintf(&b, "... and %d more\n", len(changed)-i)
			break
		}
		fmt.Fprintf(&b, "%s: %s -> %s\n", c.Cluster, orNone(c.Before), orNone(c.After))
	}
	return strings.TrimRight(b.String(), "\n")
}

// boundedList joins at most n names, counting the rest.
func boundedList(names []string, n int) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// orNone is v, or "(none)" when empty.
func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
