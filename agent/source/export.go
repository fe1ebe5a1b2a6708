package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// The two export directories (cache/rev/a and cache/rev/b): each revision is written
// into the one the current revision is not in, so the current tree stays whole while
// the next is written, and a failed export never touches it.
const (
	slotA = "a"
	slotB = "b"
)

// slotState records what a slot directory holds. It is written beside the slot
// (cache/rev/<slot>.json) once the slot is complete and removed before the slot is
// changed, so a slot without a readable state is never trusted and is rewritten whole.
type slotState struct {
	// Commit is the commit whose tree the slot holds.
	Commit string `json:"commit"`
	// Files and Bytes are the tree's totals, carried forward so that an update can
	// enforce MaxExportFiles and MaxExportBytes without reading the unchanged files.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// export makes the tree of commit sha available in a directory and returns it. A slot
// that already holds sha (an agent restart) is used as it is. Otherwise the other slot
// than the current revision's is brought to sha: when it holds an older commit whose
// objects are still in the cache, only the difference between the two trees is
// written (one commit of a 10 000-file fleet repository changes a few files); else it
// is written whole.
func (s *Source) export(ctx context.Context, sha string) (*Revision, error) {
	commit, err := s.repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("git source: commit %s: %w", sha, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("git source: tree of %s: %w", sha, err)
	}
	root := filepath.Join(s.cfg.CacheDir, "rev")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("git source: %w", err)
	}
	if s.last == nil {
		// A new process trusts nothing it finds on disk: a slot's state file says
		// which commit it holds, but not that nobody changed its files since (another
		// local user, a crash mid-write). Both slots are rewritten from the Git objects.
		removeStale(root)
		for _, slot := range []string{slotA, slotB} {
			if err := os.Remove(statePath(root, slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("git source: %w", err)
			}
		}
	}
	revision := func(slot string) *Revision {
		return &Revision{SHA: sha, Dir: filepath.Join(root, slot), Time: commit.Committer.When, Message: firstLine(commit.Message),
			Source: sourceCommit(commit)}
	}
	states := map[string]*slotState{slotA: readState(root, slotA), slotB: readState(root, slotB)}
	for _, slot := range []string{slotA, slotB} {
		if st := states[slot]; st != nil && st.Commit == sha {
			return revision(slot), nil
		}
	}
	slot := slotA
	switch {
	case s.last != nil && s.last.Dir == filepath.Join(root, slotA):
		slot = slotB
	case s.last == nil && states[slotA] == nil && states[slotB] != nil:
		slot = slotB
	}
	dir := filepath.Join(root, slot)
	if err := os.Remove(statePath(root, slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("git source: %w", err)
	}
	st, err := s.fill(ctx, dir, states[slot], tree)
	if err == nil {
		st.Commit = sha
		err = writeState(root, slot, st)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("git source: exporting %s: %w", sha, err)
	}
	return revision(slot), nil
}

// sourceCommit returns the commit a view commit was made of (its last line is
// apiv1.ViewSourceTrailer and a hash; only parentless commits are views), or the
// commit's own hash.
func sourceCommit(c *object.Commit) string {
	if len(c.ParentHashes) == 0 {
		lines := strings.Split(strings.TrimRight(c.Message, "\n"), "\n")
		if src, ok := strings.CutPrefix(lines[len(lines)-1], apiv1.ViewSourceTrailer); ok && plumbing.IsHash(src) {
			return src
		}
	}
	return c.Hash.String()
}

// fill brings dir from the tree recorded in old (nil: unknown) to tree and returns the
// new totals.
func (s *Source) fill(ctx context.Context, dir string, old *slotState, tree *object.Tree) (*slotState, error) {
	if old != nil {
		if prev, err := s.repo.CommitObject(plumbing.NewHash(old.Commit)); err == nil {
			if prevTree, err := prev.Tree(); err == nil {
				if _, err := os.Stat(dir); err == nil {
					return s.update(ctx, dir, old, prevTree, tree)
				}
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	t := &tally{wrote: s.wrote}
	if err := writeTree(s.repo.Storer, tree, root, t, s.skip); err != nil {
		return nil, err
	}
	return &slotState{Files: t.files, Bytes: t.bytes}, nil
}

// update applies the difference between two trees to dir, which holds from: removals
// first (so a path can turn from a file into a directory and back), then additions
// and changes.
func (s *Source) update(ctx context.Context, dir string, old *slotState, from, to *object.Tree) (*slotState, error) {
	d := treeDiff{skip: s.skip}
	if err := d.diff(ctx, s.repo.Storer, from, to, ""); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	t := &tally{files: old.Files, bytes: old.Bytes, wrote: s.wrote}
	for _, f := range d.removed {
		name, err := safePath(f.name)
		if err != nil {
			return nil, err
		}
		blob, err := object.GetBlob(s.repo.Storer, f.entry.Hash)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := root.Remove(filepath.FromSlash(name)); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		removeEmptyParents(root, name)
		t.files--
		t.bytes -= blob.Size
	}
	for _, f := range d.added {
		if err := t.write(s.repo.Storer, root, f.name, f.entry); err != nil {
			return nil, err
		}
	}
	return &slotState{Files: t.files, Bytes: t.bytes}, nil
}

// treeDiff lists the files that differ between two trees. Unlike go-git's DiffTree,
// which decodes every subtree of both sides to tell directories from files, it
// compares entries by hash and mode and only reads the subtrees that differ: one
// commit of a 10 000-cluster repository costs the trees on the changed paths.
type treeDiff struct {
	removed, added []treeFile
	skip           func(dir string) bool // directories left out (Source.skip)
}

// treeFile is a file (or symlink) of a tree at its slash-separated path.
type treeFile struct {
	name  string
	entry object.TreeEntry
}

func (d *treeDiff) diff(ctx context.Context, st storer.EncodedObjectStorer, from, to *object.Tree, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEntries(from, prefix); err != nil {
		return err
	}
	if err := checkEntries(to, prefix); err != nil {
		return err
	}
	old := make(map[string]object.TreeEntry, len(from.Entries))
	for _, e := range from.Entries {
		old[e.Name] = e
	}
	for _, e := range to.Entries {
		o, had := old[e.Name]
		delete(old, e.Name)
		switch {
		case e.Mode == filemode.Dir && d.skip(prefix+e.Name) && (!had || o.Mode == filemode.Dir):
			// Left out on both sides: a skipped directory is never written.
		case had && o.Hash == e.Hash && o.Mode == e.Mode:
		case had && o.Mode == filemode.Dir && e.Mode == filemode.Dir:
			a, err := object.GetTree(st, o.Hash)
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, o.Name, err)
			}
			b, err := object.GetTree(st, e.Hash)
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, e.Name, err)
			}
			if err := d.diff(ctx, st, a, b, prefix+e.Name+"/"); err != nil {
				return err
			}
		default:
			if had {
				if err := collect(st, o, prefix+o.Name, d.skip, &d.removed); err != nil {
					return err
				}
			}
			if err := collect(st, e, prefix+e.Name, d.skip, &d.added); err != nil {
				return err
			}
		}
	}
	for _, o := range old {
		if err := collect(st, o, prefix+o.Name, d.skip, &d.removed); err != nil {
			return err
		}
	}
	return nil
}

// collect appends the file e (at name), or every file under the directory e outside
// the directories skip leaves out, to out.
func collect(st storer.EncodedObjectStorer, e object.TreeEntry, name string, skip func(string) bool, out *[]treeFile) error {
	switch {
	case e.Mode == filemode.Dir:
		if skip(name) {
			return nil
		}
		t, err := object.GetTree(st, e.Hash)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return walkFiles(st, t, name+"/", skip, func(n string, f object.TreeEntry) error {
			*out = append(*out, treeFile{name: n, entry: f})
			return nil
		})
	case isFile(e.Mode):
		*out = append(*out, treeFile{name: name, entry: e})
	}
	return nil
}

// tally counts an export's files and bytes against the limits.
type tally struct {
	files int
	bytes int64
	wrote func(name string) error // tests: called before each file is written
}

// write writes one tree entry under root, counting it.
func (t *tally) write(st storer.EncodedObjectStorer, root *os.Root, name string, entry object.TreeEntry) error {
	clean, err := safePath(name)
	if err != nil {
		return err
	}
	t.files++
	if t.files > MaxExportFiles {
		return fmt.Errorf("more than %d files", MaxExportFiles)
	}
	blob, err := object.GetBlob(st, entry.Hash)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	t.bytes += blob.Size
	if t.bytes > MaxExportBytes {
		return fmt.Errorf("revision larger than %d bytes", MaxExportBytes)
	}
	if t.wrote != nil {
		if err := t.wrote(clean); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := writeEntry(root, clean, entry.Mode, blob); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeTree writes every file of tree under root, but for the directories skip
// leaves out, keeping symlinks as symlinks (the renderer refuses those that leave the
// repository) and refusing unsafe paths.
func writeTree(st storer.EncodedObjectStorer, tree *object.Tree, root *os.Root, t *tally, skip func(dir string) bool) error {
	return walkFiles(st, tree, "", skip, func(name string, e object.TreeEntry) error {
		return t.write(st, root, name, e)
	})
}

// walkFiles calls fn for every file of tree (at prefix) outside the directories skip
// leaves out, decoding only the trees it enters.
func walkFiles(st storer.EncodedObjectStorer, tree *object.Tree, prefix string, skip func(string) bool, fn func(string, object.TreeEntry) error) error {
	if err := checkEntries(tree, prefix); err != nil {
		return err
	}
	for _, e := range tree.Entries {
		name := prefix + e.Name
		switch {
		case e.Mode == filemode.Dir:
			if skip(name) {
				continue
			}
			sub, err := object.GetTree(st, e.Hash)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := walkFiles(st, sub, name+"/", skip, fn); err != nil {
				return err
			}
		case isFile(e.Mode):
			if err := fn(name, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// skip reports whether the directory dir (a slash-separated path) is left out of the
// exported revisions: another cluster's directory, when Config.Cluster is set.
func (s *Source) skip(dir string) bool {
	other, ok := strings.CutPrefix(dir, "clusters/")
	return ok && s.cfg.Cluster != "" && !strings.Contains(other, "/") && other != s.cfg.Cluster
}

// isFile reports whether a tree entry is exported: files and symlinks, not
// directories or submodules.
func isFile(mode filemode.FileMode) bool {
	return mode != filemode.Dir && mode != filemode.Submodule && mode != filemode.Empty
}

// safePath refuses tree paths that are not clean and relative inside the repository.
func safePath(name string) (string, error) {
	clean := path.Clean(name)
	if clean != name || clean == "." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) || clean == ".git" || strings.HasPrefix(clean, ".git/") {
		return "", fmt.Errorf("unsafe path %q in tree", name)
	}
	return clean, nil
}

// checkEntries refuses a tree (at prefix) whose entry names could address anything but
// one entry of that directory: empty, ".", "..", names holding '/', '\\' or NUL (go-git
// decodes such names from a crafted tree), and two entries with the same name (a
// symlink and a directory of one name would let later files be written through the
// symlink).
func checkEntries(tree *object.Tree, prefix string) error {
	seen := make(map[string]bool, len(tree.Entries))
	for _, e := range tree.Entries {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\\\x00") {
			return &UnsafeTreeError{Path: prefix + e.Name, Reason: "entry name is not a single path element"}
		}
		if seen[e.Name] {
			return &UnsafeTreeError{Path: prefix + e.Name, Reason: "two entries with this name in one tree"}
		}
		seen[e.Name] = true
	}
	return nil
}

// UnsafeTreeError is a Git tree the agent refuses to export: an entry that could make
// a write leave the export directory. The revision is not synced; the last good one
// stays in use.
type UnsafeTreeError struct {
	// Path is the entry's slash-separated path in the tree.
	Path string
	// Reason says what is wrong with it.
	Reason string
}

func (e *UnsafeTreeError) Error() string {
	return fmt.Sprintf("unsafe tree entry %q: %s", e.Path, e.Reason)
}

// checkSymlink refuses a symlink at name (slash-separated, inside the slot) whose
// target is absolute or leads outside the slot. Every symlink of a slot is checked this
// way, so a chain of them cannot leave it either.
func checkSymlink(name, target string) error {
	if target == "" || strings.ContainsRune(target, 0) {
		return &UnsafeTreeError{Path: name, Reason: "empty or NUL in symlink target"}
	}
	if path.IsAbs(target) || strings.HasPrefix(target, "\\") {
		return &UnsafeTreeError{Path: name, Reason: fmt.Sprintf("symlink target %q is absolute", target)}
	}
	if r := path.Join(path.Dir(name), target); r == ".." || strings.HasPrefix(r, "../") {
		return &UnsafeTreeError{Path: name, Reason: fmt.Sprintf("symlink target %q leads outside the repository", target)}
	}
	return nil
}

// writeEntry writes one file or symlink through root, which no path, symlink or ".."
// can leave.
func writeEntry(root *os.Root, name string, mode filemode.FileMode, blob *object.Blob) error {
	dst := filepath.FromSlash(name)
	if d := filepath.Dir(dst); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	r, err := blob.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	if mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(r, 4096))
		if err != nil {
			return err
		}
		if err := checkSymlink(name, string(target)); err != nil {
			return err
		}
		return root.Symlink(string(target), dst)
	}
	perm := os.FileMode(0o644)
	if mode == filemode.Executable {
		perm = 0o755
	}
	f, err := root.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeEmptyParents removes the directories of name under root that a removal left
// empty, so an updated slot has exactly the directories a whole export would.
func removeEmptyParents(root *os.Root, name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if root.Remove(filepath.FromSlash(d)) != nil {
			return // not empty (or gone): its parents are not empty either
		}
	}
}

func statePath(root, slot string) string { return filepath.Join(root, slot+".json") }

// readState returns a slot's state, or nil when it has none or it is unreadable.
func readState(root, slot string) *slotState {
	data, err := os.ReadFile(statePath(root, slot))
	if err != nil {
		return nil
	}
	var st slotState
	if json.Unmarshal(data, &st) != nil || !plumbing.IsHash(st.Commit) {
		return nil
	}
	return &st
}

// writeState records a complete slot, atomically.
func writeState(root, slot string, st *slotState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := statePath(root, slot) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(root, slot))
}

// removeStale removes what is in the revision directory besides the two slots and
// their states: revisions exported by older agents (one directory per commit) and
// leftovers of an interrupted write.
func removeStale(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		switch e.Name() {
		case slotA, slotB, slotA + ".json", slotB + ".json":
		default:
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}
