package gitserve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// maxViewObjects bounds the view objects kept (three per view: commit, root tree,
// clusters/ tree, each a few hundred bytes); past it the cache starts afresh. It holds
// two heads' views of a 10 000-cluster fleet.
const maxViewObjects = 1 << 16

type viewKey struct{}

// WithView marks a request to be served the view of one cluster: the repository as it
// is outside clusters/, plus clusters/<cluster>/ alone, one parentless commit per
// branch head. Objects of other clusters' directories are neither advertised nor
// reachable, so no want can fetch them.
func WithView(ctx context.Context, cluster string) context.Context {
	return context.WithValue(ctx, viewKey{}, cluster)
}

// ViewOf is a Config.View reading what WithView set on the request's context.
func ViewOf(r *http.Request) string {
	v, _ := r.Context().Value(viewKey{}).(string)
	return v
}

// viewCache holds the objects of recently made views, so a view is made once per
// commit and cluster, and an agent's previous view is found again when it says it has
// it (its next fetch then brings only what changed).
type viewCache struct {
	mu      sync.Mutex
	objects map[plumbing.Hash]plumbing.EncodedObject
	views   map[viewID]plumbing.Hash
	// dirs indexes decoded clusters/ trees by hash: after a commit every cluster's
	// agent asks for its view of the same head, and decoding a fleet's clusters/ tree
	// (one entry per cluster) for each of them would cost O(fleet²).
	dirs map[plumbing.Hash]map[string]object.TreeEntry
}

// maxClusterDirs bounds the clusters/ trees indexed (a few recent heads).
const maxClusterDirs = 8

type viewID struct {
	commit  plumbing.Hash
	cluster string
}

func newViewCache() *viewCache {
	return &viewCache{objects: map[plumbing.Hash]plumbing.EncodedObject{}, views: map[viewID]plumbing.Hash{},
		dirs: map[plumbing.Hash]map[string]object.TreeEntry{}}
}

func (c *viewCache) get(h plumbing.Hash) plumbing.EncodedObject {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.objects[h]
}

// view returns the view commit of commit for cluster, making it if needed.
func (c *viewCache) view(st storer.EncodedObjectStorer, commit plumbing.Hash, cluster string) (plumbing.Hash, error) {
	id := viewID{commit, cluster}
	c.mu.Lock()
	h, ok := c.views[id]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	objs, h, err := makeView(st, commit, cluster, c.clusterDirs)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.objects)+len(objs) > maxViewObjects {
		c.objects, c.views = map[plumbing.Hash]plumbing.EncodedObject{}, map[viewID]plumbing.Hash{}
	}
	for _, o := range objs {
		c.objects[o.Hash()] = o
	}
	c.views[id] = h
	return h, nil
}

// of returns the view commits cached for cluster: those of the heads it was
// served lately. A fetch may want one of them after the head moved on between its
// ref listing and its pack request; they hold only that cluster's files.
func (c *viewCache) of(cluster string) []plumbing.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []plumbing.Hash
	for id, h := range c.views {
		if id.cluster == cluster {
			out = append(out, h)
		}
	}
	return out
}

// clusterDirs returns the entries of the clusters/ tree h by name, decoding it once.
func (c *viewCache) clusterDirs(st storer.EncodedObjectStorer, h plumbing.Hash) (map[string]object.TreeEntry, error) {
	c.mu.Lock()
	idx, ok := c.dirs[h]
	c.mu.Unlock()
	if ok {
		return idx, nil
	}
	t, err := object.GetTree(st, h)
	if err != nil {
		return nil, err
	}
	idx = make(map[string]object.TreeEntry, len(t.Entries))
	for _, e := range t.Entries {
		idx[e.Name] = e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirs) >= maxClusterDirs {
		c.dirs = map[plumbing.Hash]map[string]object.TreeEntry{}
	}
	c.dirs[h] = idx
	return idx, nil
}

// makeView builds the view of commit for cluster: its root tree with clusters/ holding
// only <cluster> (no clusters/ at all when the cluster has no directory), every other
// entry shared with the commit, in a parentless commit by the same author and committer
// whose message ends with apiv1.ViewSourceTrailer and commit's hash.
func makeView(st storer.EncodedObjectStorer, commit plumbing.Hash, cluster string,
	dirs func(storer.EncodedObjectStorer, plumbing.Hash) (map[string]object.TreeEntry, error)) ([]plumbing.EncodedObject, plumbing.Hash, error) {
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("view of %s for %s: %w", commit, cluster, err)
	}
	root, err := object.GetTree(st, c.TreeHash)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("view of %s for %s: %w", commit, cluster, err)
	}
	var objs []plumbing.EncodedObject
	encode := func(o interface {
		Encode(plumbing.EncodedObject) error
	}) (plumbing.Hash, error) {
		obj := &plumbing.MemoryObject{}
		if err := o.Encode(obj); err != nil {
			return plumbing.ZeroHash, err
		}
		objs = append(objs, obj)
		return obj.Hash(), nil
	}
	view := &object.Tree{}
	for _, e := range root.Entries {
		if e.Name != "clusters" || e.Mode != filemode.Dir {
			view.Entries = append(view.Entries, e)
			continue
		}
		idx, err := dirs(st, e.Hash)
		if err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("view of %s for %s: clusters/: %w", commit, cluster, err)
		}
		ce, ok := idx[cluster]
		if !ok {
			continue
		}
		mine := &object.Tree{Entries: []object.TreeEntry{ce}}
		h, err := encode(mine)
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		view.Entries = append(view.Entries, object.TreeEntry{Name: e.Name, Mode: e.Mode, Hash: h})
	}
	treeHash, err := encode(view)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	vc := &object.Commit{Author: c.Author, Committer: c.Committer, TreeHash: treeHash,
		Message: c.Message + "\n" + apiv1.ViewSourceTrailer + commit.String() + "\n"}
	h, err := encode(vc)
	return objs, h, err
}

// overlay reads the view objects of a viewCache before the repository's; it is
// read-only.
type overlay struct {
	storer.EncodedObjectStorer
	views *viewCache
}

var errReadOnly = errors.New("gitserve: the repository is read-only")

func (o *overlay) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if obj := o.views.get(h); obj != nil {
		if t != plumbing.AnyObject && obj.Type() != t {
			return nil, plumbing.ErrObjectNotFound
		}
		return obj, nil
	}
	return o.EncodedObjectStorer.EncodedObject(t, h)
}

func (o *overlay) HasEncodedObject(h plumbing.Hash) error {
	if o.views.get(h) != nil {
		return nil
	}
	return o.EncodedObjectStorer.HasEncodedObject(h)
}

func (o *overlay) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if obj := o.views.get(h); obj != nil {
		return obj.Size(), nil
	}
	return o.EncodedObjectStorer.EncodedObjectSize(h)
}

func (o *overlay) SetEncodedObject(plumbing.EncodedObject) (plumbing.Hash, error) {
	return plumbing.ZeroHash, errReadOnly
}
