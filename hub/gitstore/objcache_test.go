package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// An object the store wrote or read once is answered from memory: reading it again
// touches no file (here, its file is gone) and keeps its type check; an object not
// cached is read from disk.
func TestObjectsReadOnceAreServedFromMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo.git")
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true}); err != nil {
		t.Fatal(err)
	}
	open := func() *git.Repository {
		t.Helper()
		r, err := git.PlainOpen(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, err = withObjectCache(r, dir); err != nil {
			t.Fatal(err)
		}
		return r
	}
	blob := func(content string) plumbing.EncodedObject {
		o := &plumbing.MemoryObject{}
		o.SetType(plumbing.BlobObject)
		w, _ := o.Writer()
		_, _ = w.Write([]byte(content))
		return o
	}
	looseFile := func(h plumbing.Hash) string {
		return filepath.Join(dir, "objects", h.String()[:2], h.String()[2:])
	}

	r := open()
	written, err := r.Storer.SetEncodedObject(blob("apps: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := r.Storer.SetEncodedObject(blob("labels: {}\n"))
	if err != nil {
		t.Fatal(err)
	}

	// A fresh open has an empty cache: the first read comes from disk.
	r = open()
	if _, err := r.Storer.EncodedObject(plumbing.BlobObject, other); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if err := os.Remove(looseFile(other)); err != nil {
		t.Fatal(err)
	}
	o, err := r.Storer.EncodedObject(plumbing.BlobObject, other)
	if err != nil {
		t.Fatalf("read after its file is gone: %v (the cache was not consulted before the disk)", err)
	}
	if o.Hash() != other || o.Size() != int64(len("labels: {}\n")) {
		t.Errorf("cached object %s of %d bytes, want %s of %d", o.Hash(), o.Size(), other, len("labels: {}\n"))
	}
	if err := r.Storer.HasEncodedObject(other); err != nil {
		t.Errorf("HasEncodedObject of a cached object: %v", err)
	}
	if n, err := r.Storer.EncodedObjectSize(other); err != nil || n != o.Size() {
		t.Errorf("EncodedObjectSize of a cached object: %d, %v", n, err)
	}
	if _, err := r.Storer.EncodedObject(plumbing.TreeObject, other); !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Errorf("a blob read as a tree: %v, want ErrObjectNotFound", err)
	}

	// Objects written through the storage are cached as they are written.
	w := open()
	h, err := w.Storer.SetEncodedObject(blob("written: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(looseFile(h)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Storer.EncodedObject(plumbing.AnyObject, h); err != nil {
		t.Errorf("read of an object just written, its file gone: %v", err)
	}

	// Not cached and not on disk: not found, as before.
	if err := os.Remove(looseFile(written)); err != nil {
		t.Fatal(err)
	}
	if _, err := open().Storer.EncodedObject(plumbing.BlobObject, written); !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Errorf("an object neither cached nor on disk: %v, want ErrObjectNotFound", err)
	}
}
