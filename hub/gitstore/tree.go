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

	"github.com/outpost-gitops/outpost/internal/gitobj"
)

// writeTree stores the tree that is base (nil: empty) with edits applied (see
// gitobj.Editor.EditTree), reading base's directories through c and caching the
// trees it writes: what is written is read next (validation, snapshot, Changed).
func writeTree(c *treeCache, base *object.Tree, edits map[string]gitobj.Edit) (h plumbing.Hash, empty bool, err error) {
	ed := gitobj.Editor{
		Store: c.s,
		Read: func(h plumbing.Hash) (*object.Tree, error) {
			ct, err := c.get(h)
			if err != nil {
				return nil, err
			}
			return ct.tree, nil
		},
		Wrote: func(t *object.Tree) { c.put(t) },
	}
	return ed.EditTree(base, edits)
}

// treeCache holds decoded trees by hash, so that looking up many paths under one
// big directory (clusters/ of a fleet of thousands) decodes it once instead of once
// per path: go-git's Tree.FindEntry decodes every directory on the way on each call,
// which made a snapshot, a validation or a Changed of N clusters cost O(N²). It holds
// at most maxCachedEntries entries (then starts over). Cached trees are shared: read
// their Entries only, never call methods that memoize (FindEntry, Files). Not safe
// for concurrent use: the Store's mu guards its cache.
type treeCache struct {
	s       storer.EncodedObjectStorer
	trees   map[plumbing.Hash]*cachedTree
	entries int
}

// cachedTree is a decoded tree with an index of its entries by name.
type cachedTree struct {
	tree  *object.Tree
	index map[string]int // entry name -> position; nil for small trees
}

const (
	// maxCachedEntries bounds the entries a treeCache holds (about 100 bytes each).
	maxCachedEntries = 1 << 18
	// indexMinEntries is the size from which a cached tree gets an index.
	indexMinEntries = 16
)

// newTreeCache returns an empty cache reading trees from s.
func newTreeCache(s storer.EncodedObjectStorer) *treeCache {
	return &treeCache{s: s, trees: map[plumbing.Hash]*cachedTree{}}
}

// get returns the tree h, decoding it on first use.
func (c *treeCache) get(h plumbing.Hash) (*cachedTree, error) {
	if ct, ok := c.trees[h]; ok {
		return ct, nil
	}
	t, err := object.GetTree(c.s, h)
	if err != nil {
		return nil, err
	}
	return c.put(t), nil
}

// put caches t, a tree whose Hash is set.
func (c *treeCache) put(t *object.Tree) *cachedTree {
	if ct, ok := c.trees[t.Hash]; ok {
		return ct
	}
	ct := &cachedTree{tree: t}
	if len(t.Entries) >= indexMinEntries {
		ct.index = make(map[string]int, len(t.Entries))
		for i, e := range t.Entries {
			ct.index[e.Name] = i
		}
	}
	if c.entries+len(t.Entries) > maxCachedEntries {
		clear(c.trees)
		c.entries = 0
	}
	c.trees[t.Hash] = ct
	c.entries += len(t.Entries)
	return ct
}

// entry returns the entry called name.
func (ct *cachedTree) entry(name string) (object.TreeEntry, bool) {
	if ct.index != nil {
		i, ok := ct.index[name]
		if !ok {
			return object.TreeEntry{}, false
		}
		return ct.tree.Entries[i], true
	}
	for _, e := range ct.tree.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

// find returns the entry at the slash-separated path p of root: an
// object.ErrDirectoryNotFound when a directory on the way is missing (or not a
// directory), object.ErrEntryNotFound when the last element is.
func (c *treeCache) find(root *object.Tree, p string) (object.TreeEntry, error) {
	cur, err := c.get(root.Hash)
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("read tree %s: %w", root.Hash, err)
	}
	for {
		name, rest, more := strings.Cut(p, "/")
		e, ok := cur.entry(name)
		if !more {
			if !ok {
				return object.TreeEntry{}, object.ErrEntryNotFound
			}
			return e, nil
		}
		if !ok || e.Mode != filemode.Dir {
			return object.TreeEntry{}, object.ErrDirectoryNotFound
		}
		if cur, err = c.get(e.Hash); err != nil {
			return object.TreeEntry{}, fmt.Errorf("read tree %s: %w", e.Hash, err)
		}
		p = rest
	}
}

// dir returns the directory at p of root ("" or "." is root itself), or
// object.ErrDirectoryNotFound.
func (c *treeCache) dir(root *object.Tree, p string) (*object.Tree, error) {
	h := root.Hash
	if p != "" && p != "." {
		e, err := c.find(root, p)
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || (err == nil && e.Mode != filemode.Dir) {
			return nil, object.ErrDirectoryNotFound
		}
		if err != nil {
			return nil, err
		}
		h = e.Hash
	}
	ct, err := c.get(h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	return ct.tree, nil
}

// entryHash returns the hash of the blob or tree at p in t, or ZeroHash when
// there is none.
func (c *treeCache) entryHash(t *object.Tree, p string) plumbing.Hash {
	if t == nil {
		return plumbing.ZeroHash
	}
	e, err := c.find(t, p)
	if err != nil {
		return plumbing.ZeroHash
	}
	return e.Hash
}

// readBlob returns the content of the file at p in t; found is false when there
// is no regular file there.
func (c *treeCache) readBlob(t *object.Tree, p string, limit int64) (data []byte, found bool, err error) {
	e, err := c.find(t, p)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	if !e.Mode.IsFile() || e.Mode == filemode.Symlink {
		return nil, false, nil
	}
	blob, err := object.GetBlob(c.s, e.Hash)
	if err != nil {
		return nil, true, fmt.Errorf("read %s: %w", p, err)
	}
	if blob.Size > limit {
		return nil, true, fmt.Errorf("read %s: %d bytes, more than the limit of %d", p, blob.Size, limit)
	}
	r, err := blob.Reader()
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

// maxLinkTarget bounds the target of a symbolic link.
const maxLinkTarget = 4096

// linkTarget returns the target of the symbolic link whose blob is h.
func (c *treeCache) linkTarget(h plumbing.Hash) (string, error) {
	blob, err := object.GetBlob(c.s, h)
	if err != nil {
		return "", err
	}
	if blob.Size > maxLinkTarget {
		return "", fmt.Errorf("%d bytes, more than the limit of %d", blob.Size, maxLinkTarget)
	}
	r, err := blob.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	return string(data), err
}

// subdirs returns the sorted names of the directories in the directory p of t.
func (c *treeCache) subdirs(t *object.Tree, p string) ([]string, error) {
	sub, err := c.dir(t, p)
	if errors.Is(err, object.ErrDirectoryNotFound) {
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
// Trees are read through a treeCache; when deps is set, every Open is recorded
// in it (see fileDep).
type treeFS struct {
	root   *object.Tree
	trees  *treeCache
	deps   *[]fileDep
	depDir string // see recording
}

// newTreeFS returns root as an fs.FS reading trees through c.
func newTreeFS(c *treeCache, root *object.Tree) treeFS {
	return treeFS{root: root, trees: c}
}

// fileDep is one path an Open resolved and what it found. Whatever reads a treeFS
// only through Open (sync/repo's Load does) reads the same from another tree where
// every recorded path resolves to the same entry: that is how a snapshot reuses the
// clusters a commit did not touch.
type fileDep struct {
	path string
	hash plumbing.Hash
	mode filemode.FileMode
	err  string // the resolution's error; empty when it found an entry
	// local is set when the path lies in the recording's directory and resolved
	// without following a link: the directory's hash then decides it.
	local bool
}

// recording returns f recording its Opens in deps; paths in dir (resolved without
// links) are marked local.
func (f treeFS) recording(deps *[]fileDep, dir string) treeFS {
	f.deps, f.depDir = deps, dir
	return f
}

// depChecker tells whether recorded deps still hold in a tree, resolving each
// path outside a recording's directory once (the apps that every cluster lists).
type depChecker struct {
	fsys treeFS
	seen map[string]fileDep
}

func newDepChecker(fsys treeFS) *depChecker {
	return &depChecker{fsys: fsys, seen: map[string]fileDep{}}
}

// unchanged reports whether every dep resolves as it did when recorded, given the
// hash the recording's directory had then.
func (c *depChecker) unchanged(dir string, dirHash plumbing.Hash, deps []fileDep) bool {
	if c.fsys.trees.entryHash(c.fsys.root, dir) != dirHash {
		return false
	}
	for _, d := range deps {
		if d.local {
			continue
		}
		now, ok := c.seen[d.path]
		if !ok {
			now = c.fsys.dep(d.path)
			c.seen[d.path] = now
		}
		if now.hash != d.hash || now.mode != d.mode || now.err != d.err {
			return false
		}
	}
	return true
}

// dep resolves name, as Open does.
func (f treeFS) dep(name string) fileDep {
	e, err := f.resolve(name)
	if err != nil {
		return fileDep{path: name, err: err.Error()}
	}
	return fileDep{path: name, hash: e.Hash, mode: e.Mode}
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
	if f.deps != nil {
		d := fileDep{path: name, hash: e.Hash, mode: e.Mode}
		if err != nil {
			d = fileDep{path: name, err: err.Error()}
		}
		// A path in the directory that resolved (or failed) without following a
		// link depends on nothing but the directory's content.
		d.local = f.depDir != "" && !e.linked && (name == f.depDir || strings.HasPrefix(name, f.depDir+"/")) &&
			(err == nil || errors.Is(err, fs.ErrNotExist))
		*f.deps = append(*f.deps, d)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := &entryInfo{name: path.Base(name), mode: e.Mode}
	if e.Mode == filemode.Dir {
		t, err := f.trees.dir(f.root, e.path)
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
	path   string
	linked bool // a symbolic link was followed on the way
}

// resolve walks name component by component, following symbolic links.
func (f treeFS) resolve(name string) (resolvedEntry, error) {
	if name == "." {
		return resolvedEntry{TreeEntry: object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: f.root.Hash}, path: "."}, nil
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
		e, err := f.trees.find(f.root, p)
		switch {
		case errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound):
			return resolvedEntry{linked: hops > 0}, fs.ErrNotExist
		case err != nil:
			return resolvedEntry{linked: hops > 0}, err
		}
		if e.Mode == filemode.Symlink {
			if hops++; hops > maxLinkHops {
				return resolvedEntry{linked: hops > 0}, errors.New("too many levels of symbolic links")
			}
			target, err := f.trees.linkTarget(e.Hash)
			if err != nil {
				return resolvedEntry{linked: hops > 0}, fmt.Errorf("read link %s: %w", p, err)
			}
			if path.IsAbs(target) {
				return resolvedEntry{linked: hops > 0}, errEscape
			}
			target = path.Join(path.Dir(p), target)
			if target == ".." || strings.HasPrefix(target, "../") {
				return resolvedEntry{linked: hops > 0}, errEscape
			}
			rest := append(strings.Split(target, "/"), parts[i+1:]...)
			parts, i, cur = rest, -1, ""
			continue
		}
		if i < len(parts)-1 && e.Mode != filemode.Dir {
			return resolvedEntry{linked: hops > 0}, fs.ErrNotExist
		}
		cur = p
		if i == len(parts)-1 {
			return resolvedEntry{TreeEntry: e, path: p, linked: hops > 0}, nil
		}
	}
	return resolvedEntry{TreeEntry: object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: f.root.Hash}, path: "."}, nil
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
