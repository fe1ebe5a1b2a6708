// Package gitobj writes Git objects with go-git's plumbing: blobs, trees in Git's
// entry order, and a tree edited path by path. It is the one place that knows
// Git's tree-entry order; the hub's store (hub/gitstore), the test Git server
// (internal/gittest) and the benchmarks (bench) build their trees through it.
package gitobj

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Order is Git's order of tree entries: names compared as bytes, a directory's
// as if it ended in "/" (so "a.b" < "a" (a directory) < "a0"). It compares without
// building that string: the hub sorts the 10 000 entries of a big fleet's
// clusters/ on every commit. A tree in any other order has another hash than the
// one Git computes, and Git tools reject it.
func Order(a, b object.TreeEntry) int {
	n := min(len(a.Name), len(b.Name))
	if c := strings.Compare(a.Name[:n], b.Name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(nameByte(a, n), nameByte(b, n))
}

// nameByte is the byte at i of the entry's sort name (a directory's name followed
// by '/'), or -1 past its end.
func nameByte(e object.TreeEntry, i int) int {
	switch {
	case i < len(e.Name):
		return int(e.Name[i])
	case i == len(e.Name) && e.Mode == filemode.Dir:
		return '/'
	}
	return -1
}

// WriteBlob stores data as a blob in s and returns its hash.
func WriteBlob(s storer.EncodedObjectStorer, data []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// WriteTree sorts entries in Git's order (in place) and stores them as a tree in
// s. It returns the tree with its Hash set; it has no storer, so read its Entries
// only (FindEntry and Files would fail).
func WriteTree(s storer.EncodedObjectStorer, entries []object.TreeEntry) (*object.Tree, error) {
	slices.SortFunc(entries, Order)
	tree := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return nil, err
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return nil, err
	}
	tree.Hash = h
	return tree, nil
}

// Edit is the new state of one path of a tree: a blob, or nothing.
type Edit struct {
	// Hash of the new blob; unused with Delete.
	Hash plumbing.Hash
	// Mode of the new entry (Regular, Executable or Symlink); unused with Delete.
	Mode filemode.FileMode
	// Delete removes the path, a file or a whole directory.
	Delete bool
}

// Editor writes trees edited path by path.
type Editor struct {
	// Store receives the trees written; the blobs of the edits are already in it.
	Store storer.EncodedObjectStorer
	// Read returns the tree h, a directory of the base being edited; nil reads it
	// from Store (object.GetTree).
	Read func(h plumbing.Hash) (*object.Tree, error)
	// Wrote, when set, is given every tree written, with its Hash set (to cache
	// what is read next).
	Wrote func(t *object.Tree)
}

// EditTree stores the tree that is base (nil: empty) with edits applied, keyed
// by slash-separated paths relative to base, and returns its hash; empty is true
// when the result has no entries (a directory Git does not keep, so an edit that
// empties a directory removes it from its parent). Only the directories on the
// edited paths are read and written.
func (e Editor) EditTree(base *object.Tree, edits map[string]Edit) (h plumbing.Hash, empty bool, err error) {
	entries := map[string]object.TreeEntry{}
	if base != nil {
		for _, te := range base.Entries {
			entries[te.Name] = te
		}
	}
	sub := map[string]map[string]Edit{}
	for p, ed := range edits {
		first, rest, nested := strings.Cut(p, "/")
		switch {
		case !nested && ed.Delete:
			delete(entries, first)
		case !nested:
			entries[first] = object.TreeEntry{Name: first, Mode: ed.Mode, Hash: ed.Hash}
		default:
			if sub[first] == nil {
				sub[first] = map[string]Edit{}
			}
			sub[first][rest] = ed
		}
	}
	for name, subEdits := range sub {
		var subBase *object.Tree
		if old, ok := entries[name]; ok && old.Mode == filemode.Dir {
			if subBase, err = e.read(old.Hash); err != nil {
				return h, false, fmt.Errorf("read tree %s: %w", name, err)
			}
		}
		sh, subEmpty, err := e.EditTree(subBase, subEdits)
		if err != nil {
			return h, false, err
		}
		if subEmpty {
			delete(entries, name)
		} else {
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: sh}
		}
	}
	list := make([]object.TreeEntry, 0, len(entries))
	for _, te := range entries {
		list = append(list, te)
	}
	tree, err := WriteTree(e.Store, list)
	if err != nil {
		return h, false, err
	}
	if e.Wrote != nil {
		e.Wrote(tree)
	}
	return tree.Hash, len(tree.Entries) == 0, nil
}

// read returns the tree h through Read or from Store.
func (e Editor) read(h plumbing.Hash) (*object.Tree, error) {
	if e.Read != nil {
		return e.Read(h)
	}
	return object.GetTree(e.Store, h)
}
