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
)

// SourceTrailer names, in a view commit's message, the commit the view was made of.
const SourceTrailer = "Outpost-Source-Commit: "

// maxViewObjects bounds the view objects kept; past it the cache starts afresh.
const maxViewObjects = 1 << 14

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
}

type viewID struct {
	commit  plumbing.Hash
	cluster string
}

func newViewCache() *viewCache {
	return &viewCache{objects: map[plumbing.Hash]plumbing.EncodedObject{}, views: map[viewID]plumbing.Hash{}}
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
	objs, h, err := makeView(st, commit, cluster)
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

// makeView builds the view of commit for cluster: its root tree with clusters/ holding
// only <cluster> (no clusters/ at all when the cluster has no directory), every other
// entry shared with the commit, in a parentless commit by the same author and committer
// whose message ends with SourceTrailer and commit's hash.
func makeView(st storer.EncodedObjectStorer, commit plumbing.Hash, cluster string) ([]plumbing.EncodedObject, plumbing.Hash, error) {
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
		sub, err := object.GetTree(st, e.Hash)
		if err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("view of %s for %s: clusters/: %w", commit, cluster, err)
		}
		mine := &object.Tree{}
		for _, ce := range sub.Entries {
			if ce.Name == cluster {
				mine.Entries = append(mine.Entries, ce)
			}
		}
		if len(mine.Entries) == 0 {
			continue
		}
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
		Message: c.Message + "\n" + SourceTrailer + commit.String() + "\n"}
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
