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
		removeStale(root)
	}
	revision := func(slot string) *Revision {
		return &Revision{SHA: sha, Dir: filepath.Join(root, slot), Time: commit.Committer.When, Message: firstLine(commit.Message)}
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
	t := &tally{wrote: s.wrote}
	if err := writeTree(s.repo.Storer, tree, dir, t); err != nil {
		return nil, err
	}
	return &slotState{Files: t.files, Bytes: t.bytes}, nil
}

// update applies the difference between two trees to dir, which holds from: removals
// first (so a path can turn from a file into a directory and back), then additions
// and changes.
func (s *Source) update(ctx context.Context, dir string, old *slotState, from, to *object.Tree) (*slotState, error) {
	changes, err := object.DiffTreeWithOptions(ctx, from, to, nil)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	t := &tally{files: old.Files, bytes: old.Bytes, wrote: s.wrote}
	for _, c := range changes {
		if c.From.Name == "" || !isFile(c.From.TreeEntry.Mode) {
			continue
		}
		name, err := safePath(c.From.Name)
		if err != nil {
			return nil, err
		}
		blob, err := object.GetBlob(s.repo.Storer, c.From.TreeEntry.Hash)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		removeEmptyParents(dir, name)
		t.files--
		t.bytes -= blob.Size
	}
	for _, c := range changes {
		if c.To.Name == "" || !isFile(c.To.TreeEntry.Mode) {
			continue
		}
		if err := t.write(s.repo.Storer, dir, c.To.Name, c.To.TreeEntry); err != nil {
			return nil, err
		}
	}
	return &slotState{Files: t.files, Bytes: t.bytes}, nil
}

// tally counts an export's files and bytes against the limits.
type tally struct {
	files int
	bytes int64
	wrote func(name string) error // tests: called before each file is written
}

// write writes one tree entry under root, counting it.
func (t *tally) write(st storer.EncodedObjectStorer, root, name string, entry object.TreeEntry) error {
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

// writeTree writes every file of tree under root, keeping symlinks as symlinks (the
// renderer refuses those that leave the repository) and refusing unsafe paths.
func writeTree(st storer.EncodedObjectStorer, tree *object.Tree, root string, t *tally) error {
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !isFile(entry.Mode) {
			continue
		}
		if err := t.write(st, root, name, entry); err != nil {
			return err
		}
	}
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

func writeEntry(root, name string, mode filemode.FileMode, blob *object.Blob) error {
	dst := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
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
		return os.Symlink(string(target), dst)
	}
	perm := os.FileMode(0o644)
	if mode == filemode.Executable {
		perm = 0o755
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
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
func removeEmptyParents(root, name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if os.Remove(filepath.Join(root, filepath.FromSlash(d))) != nil {
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
