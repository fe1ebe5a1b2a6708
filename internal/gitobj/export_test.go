package gitobj

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// tree builds a one-level tree of name → (mode, content) in a memory store.
func tree(t *testing.T, s *memory.Storage, entries map[string]struct {
	mode filemode.FileMode
	data string
}) *object.Tree {
	t.Helper()
	var es []object.TreeEntry
	for name, e := range entries {
		h, err := WriteBlob(s, []byte(e.data))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, object.TreeEntry{Name: name, Mode: e.mode, Hash: h})
	}
	written, err := WriteTree(s, es)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := object.GetTree(s, written.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

type exportEntry = struct {
	mode filemode.FileMode
	data string
}

func TestExportWritesFilesAndInsideSymlinks(t *testing.T) {
	s := memory.NewStorage()
	tr := tree(t, s, map[string]exportEntry{
		"a.yaml": {filemode.Regular, "a: 1\n"},
		"run.sh": {filemode.Executable, "#!/bin/sh\n"},
		"link":   {filemode.Symlink, "a.yaml"},
	})
	dir := t.TempDir()
	if err := Export(t.Context(), tr, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "link")); err != nil || string(b) != "a: 1\n" {
		t.Fatalf("link reads %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("run.sh: %v %v", fi, err)
	}
}

// A crafted tree must not write outside the export directory (the diff command exports
// the commits of a pull request, which anyone may craft).
func TestAttackExportRefusesEscapes(t *testing.T) {
	tests := map[string]map[string]exportEntry{
		"symlink up":       {"evil": {filemode.Symlink, "../../outside"}},
		"absolute symlink": {"evil": {filemode.Symlink, "/etc/passwd"}},
		"name with slash":  {"../outside": {filemode.Regular, "x"}},
		"dot-dot name":     {"..": {filemode.Regular, "x"}},
		"backslash target": {"evil": {filemode.Symlink, `..\..\outside`}},
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			s := memory.NewStorage()
			tr := tree(t, s, entries)
			parent := t.TempDir()
			dir := filepath.Join(parent, "export")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			err := Export(t.Context(), tr, dir)
			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) {
				t.Fatalf("err = %v, want *UnsafeEntryError", err)
			}
			if _, err := os.Lstat(filepath.Join(parent, "outside")); !os.IsNotExist(err) {
				t.Fatal("a file was written outside the export directory")
			}
		})
	}
}
