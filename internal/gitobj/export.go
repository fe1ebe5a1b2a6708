package gitobj

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// UnsafeEntryError reports a tree entry that cannot be written inside the export
// directory: a name that is not one path element, or a symlink whose target leaves
// the tree.
type UnsafeEntryError struct {
	// Path is the entry's path in the tree.
	Path string
	// Reason says what is wrong with it.
	Reason string
}

func (e *UnsafeEntryError) Error() string { return fmt.Sprintf("tree entry %q: %s", e.Path, e.Reason) }

// Export writes tree into dir, which must exist and be empty: directories, regular
// and executable files, and symlinks whose target stays inside the tree. Every write
// goes through an os.Root, so nothing lands outside dir whatever the tree holds; an
// entry that could not be written faithfully is an *UnsafeEntryError. Submodules
// are skipped.
func Export(ctx context.Context, tree *object.Tree, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	defer func() { _ = root.Close() }()
	return exportTree(ctx, root, tree, "")
}

func exportTree(ctx context.Context, root *os.Root, tree *object.Tree, prefix string) error {
	for _, e := range tree.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(prefix, e.Name)
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\\\x00") {
			return &UnsafeEntryError{Path: p, Reason: "the name is not one path element"}
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := tree.Tree(e.Name)
			if err != nil {
				return fmt.Errorf("read tree %s: %w", p, err)
			}
			if err := root.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("export %s: %w", p, err)
			}
			if err := exportTree(ctx, root, sub, p); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			if err := writeFile(root, tree, e, p); err != nil {
				return err
			}
		case filemode.Symlink:
			target, err := blobString(tree, e)
			if err != nil {
				return fmt.Errorf("read symlink %s: %w", p, err)
			}
			if path.IsAbs(target) || strings.Contains(target, "\\") || escapes(path.Join(path.Dir(p), target)) {
				return &UnsafeEntryError{Path: p, Reason: fmt.Sprintf("symlink target %q leaves the tree", target)}
			}
			if err := root.Symlink(target, p); err != nil {
				return fmt.Errorf("export %s: %w", p, err)
			}
		}
	}
	return nil
}

// escapes tells whether a cleaned relative path leaves its root.
func escapes(p string) bool { return p == ".." || strings.HasPrefix(p, "../") }

func writeFile(root *os.Root, tree *object.Tree, e object.TreeEntry, p string) error {
	blob, err := tree.TreeEntryFile(&e)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	defer func() { _ = r.Close() }()
	mode := os.FileMode(0o644)
	if e.Mode == filemode.Executable {
		mode = 0o755
	}
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}

func blobString(tree *object.Tree, e object.TreeEntry) (string, error) {
	f, err := tree.TreeEntryFile(&e)
	if err != nil {
		return "", err
	}
	return f.Contents()
}
