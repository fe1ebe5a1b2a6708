package gitstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// treeEdit is the new state of one path of a tree: a blob, or nothing.
type treeEdit struct {
	// hash of the new blob; unused with delete.
	hash plumbing.Hash
	// mode of the new entry (Regular, Executable or Symlink); unused with delete.
	mode filemode.FileMode
	// delete removes the path, a file or a whole directory.
	delete bool
}

// writeBlob stores data as a blob.
func writeBlob(s storer.EncodedObjectStorer, data []byte) (plumbing.Hash, error) {
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

// writeTree stores the tree that is base (nil: empty) with edits applied, keyed
// by slash-separated paths relative to base, and returns its hash; empty is true
// when the result has no entries (a directory git does not keep).
func writeTree(s storer.EncodedObjectStorer, base *object.Tree, edits map[string]treeEdit) (h plumbing.Hash, empty bool, err error) {
	entries := map[string]object.TreeEntry{}
	if base != nil {
		for _, e := range base.Entries {
			entries[e.Name] = e
		}
	}
	sub := map[string]map[string]treeEdit{}
	for p, e := range edits {
		first, rest, nested := strings.Cut(p, "/")
		switch {
		case !nested && e.delete:
			delete(entries, first)
		case !nested:
			entries[first] = object.TreeEntry{Name: first, Mode: e.mode, Hash: e.hash}
		default:
			if sub[first] == nil {
				sub[first] = map[string]treeEdit{}
			}
			sub[first][rest] = e
		}
	}
	for name, subEdits := range sub {
		var subBase *object.Tree
		if old, ok := entries[name]; ok && old.Mode == filemode.Dir {
			if subBase, err = object.GetTree(s, old.Hash); err != nil {
				return h, false, fmt.Errorf("read tree %s: %w", name, err)
			}
		}
		sh, subEmpty, err := writeTree(s, subBase, subEdits)
		if err != nil {
			return h, false, err
		}
		if subEmpty {
			delete(entries, name)
		} else {
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: sh}
		}
	}
	tree := &object.Tree{}
	for _, e := range entries {
		tree.Entries = append(tree.Entries, e)
	}
	// Git orders tree entries by name, comparing a directory as "name/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(tree.Entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	obj := s.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return h, false, err
	}
	h, err = s.SetEncodedObject(obj)
	return h, len(tree.Entries) == 0, err
}

// entryHash returns the hash of the blob or tree at p in t, or ZeroHash when
// there is none.
func entryHash(t *object.Tree, p string) plumbing.Hash {
	if t == nil {
		return plumbing.ZeroHash
	}
	e, err := t.FindEntry(p)
	if err != nil {
		return plumbing.ZeroHash
	}
	return e.Hash
}

// readBlob returns the content of the file at p in t; found is false when there
// is no regular file there.
func readBlob(t *object.Tree, p string, limit int64) (data []byte, found bool, err error) {
	f, err := t.File(p)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	if !f.Mode.IsFile() || f.Mode == filemode.Symlink {
		return nil, false, nil
	}
	if f.Size > limit {
		return nil, true, fmt.Errorf("read %s: %d bytes, more than the limit of %d", p, f.Size, limit)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, true, fmt.Errorf("read %s: %w", p, err)
	}
	defer r.Close()
	data, err = io.ReadAll(r)
	if err != nil {
		return nil, true, fmt.Errorf("read %s: %w", p, err)
	}
	return data, true, nil
}

// subdirs returns the sorted names of the directories in the directory p of t.
func subdirs(t *object.Tree, p string) ([]string, error) {
	sub, err := t.Tree(p)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var names []string
	for _, e := range sub.Entries {
		if e.Mode == filemode.Dir {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// treeFS is a commit's tree as an fs.FS, so that sync/repo can load the
// repository at any revision without a checkout. Symbolic links are followed
// inside the tree (a link leading outside it is an error, as with os.Root).
type treeFS struct {
	root *object.Tree
}

// maxLinkHops bounds the symbolic links followed while resolving one path.
const maxLinkHops = 40

var errEscape = errors.New("path escapes from parent")

// Open opens the file or directory name.
func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e, err := f.resolve(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := &entryInfo{name: path.Base(name), mode: e.Mode}
	if e.Mode == filemode.Dir {
		t := f.root
		if e.path != "." {
			t, err = f.root.Tree(e.path)
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &treeDir{info: info, tree: t}, nil
	}
	file, err := f.root.TreeEntryFile(&object.TreeEntry{Name: e.Name, Mode: e.Mode, Hash: e.Hash})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info.size = file.Size
	return &blobFile{info: info, file: file}, nil
}

// resolvedEntry is a tree entry and its path after following links.
type resolvedEntry struct {
	object.TreeEntry
	path string
}

// resolve walks name component by component, following symbolic links.
func (f treeFS) resolve(name string) (resolvedEntry, error) {
	if name == "." {
		return resolvedEntry{TreeEntry: object.TreeEntry{Name: ".", Mode: filemode.Dir}, path: "."}, nil
	}
	parts := strings.Split(name, "/")
	cur := ""
	hops := 0
	for i := 0; i < len(parts); i++ {
		p := path.Join(cur, parts[i])
		if p == "." {
			cur = ""
			continue
		}
		e, err := f.root.FindEntry(p)
		if err != nil {
			return resolvedEntry{}, fs.ErrNotExist
		}
		if e.Mode == filemode.Symlink {
			if hops++; hops > maxLinkHops {
				return resolvedEntry{}, errors.New("too many levels of symbolic links")
			}
			data, _, err := readBlob(f.root, p, 4096)
			if err != nil {
				return resolvedEntry{}, err
			}
			target := string(data)
			if path.IsAbs(target) {
				return resolvedEntry{}, errEscape
			}
			target = path.Join(path.Dir(p), target)
			if target == ".." || strings.HasPrefix(target, "../") {
				return resolvedEntry{}, errEscape
			}
			rest := append(strings.Split(target, "/"), parts[i+1:]...)
			parts, i, cur = rest, -1, ""
			continue
		}
		if i < len(parts)-1 && e.Mode != filemode.Dir {
			return resolvedEntry{}, fs.ErrNotExist
		}
		cur = p
		if i == len(parts)-1 {
			return resolvedEntry{TreeEntry: *e, path: p}, nil
		}
	}
	return resolvedEntry{TreeEntry: object.TreeEntry{Name: ".", Mode: filemode.Dir}, path: "."}, nil
}

// entryInfo is the fs.FileInfo of a tree entry.
type entryInfo struct {
	name string
	mode filemode.FileMode
	size int64
}

func (i *entryInfo) Name() string { return i.name }
func (i *entryInfo) Size() int64  { return i.size }
func (i *entryInfo) Mode() fs.FileMode {
	switch i.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o644
}
func (i *entryInfo) ModTime() time.Time         { return time.Time{} }
func (i *entryInfo) IsDir() bool                { return i.mode == filemode.Dir }
func (i *entryInfo) Sys() any                   { return nil }
func (i *entryInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i *entryInfo) Info() (fs.FileInfo, error) { return i, nil }

// blobFile is an open regular file of a treeFS.
type blobFile struct {
	info *entryInfo
	file *object.File
	r    io.ReadCloser
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Read(p []byte) (int, error) {
	if f.r == nil {
		r, err := f.file.Reader()
		if err != nil {
			return 0, err
		}
		f.r = r
	}
	return f.r.Read(p)
}
func (f *blobFile) Close() error {
	if f.r != nil {
		return f.r.Close()
	}
	return nil
}

// treeDir is an open directory of a treeFS.
type treeDir struct {
	info *entryInfo
	tree *object.Tree
	read int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *treeDir) Close() error { return nil }

// ReadDir lists the directory in name order; symbolic links are reported as such.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	entries := d.tree.Entries[d.read:]
	if n > 0 && len(entries) > n {
		entries = entries[:n]
	}
	if n > 0 && len(entries) == 0 {
		return nil, io.EOF
	}
	out := make([]fs.DirEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, &entryInfo{name: e.Name, mode: e.Mode})
	}
	d.read += len(entries)
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}
