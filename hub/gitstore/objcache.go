package gitstore

import (
	"fmt"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectCacheSize bounds the decoded objects the store keeps in memory (go-git's
// default, which a plain open of the repository had already).
const objectCacheSize = cache.DefaultMaxSize

// cachedStorage is a repository's filesystem storage that answers reads of objects in
// its cache without touching the disk. go-git's own storage opens an object's file
// (a path walk and an open, each a few system calls) before it looks in the cache, so
// the cache saved decoding but no I/O: a bulk write of 1000 clusters reads some 10 000
// blobs and trees, most of them read by the write before. Objects are immutable and
// named by their hash, so a cached object is never stale; objects the store writes
// go into the cache too (the snapshot after a commit reads them back at once).
type cachedStorage struct {
	*filesystem.Storage
	objects cache.Object
}

// EncodedObject implements storer.EncodedObjectStorer.
func (s *cachedStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := s.objects.Get(h); ok && (t == plumbing.AnyObject || o.Type() == t) {
		return o, nil
	}
	return s.Storage.EncodedObject(t, h)
}

// HasEncodedObject implements storer.EncodedObjectStorer.
func (s *cachedStorage) HasEncodedObject(h plumbing.Hash) error {
	if _, ok := s.objects.Get(h); ok {
		return nil
	}
	return s.Storage.HasEncodedObject(h)
}

// EncodedObjectSize implements storer.EncodedObjectStorer.
func (s *cachedStorage) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if o, ok := s.objects.Get(h); ok {
		return o.Size(), nil
	}
	return s.Storage.EncodedObjectSize(h)
}

// SetEncodedObject implements storer.EncodedObjectStorer.
func (s *cachedStorage) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	h, err := s.Storage.SetEncodedObject(o)
	if err == nil {
		if _, isMem := o.(*plumbing.MemoryObject); isMem {
			s.objects.Put(o) // only objects held in memory: a lazily read one would keep its file
		}
	}
	return h, err
}

// withObjectCache reopens r, a bare repository in dir, on a cachedStorage. Other
// repositories are returned as they are.
func withObjectCache(r *git.Repository, dir string) (*git.Repository, error) {
	cfg, err := r.Config()
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", dir, err)
	}
	if !cfg.Core.IsBare {
		return r, nil
	}
	objects := cache.NewObjectLRU(objectCacheSize)
	st := &cachedStorage{Storage: filesystem.NewStorage(osfs.New(dir), objects), objects: objects}
	cr, err := git.Open(st, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return cr, nil
}
