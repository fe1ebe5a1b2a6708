package gitobj

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// TestOrder checks Order on cases that tell Git's rule (a directory sorts as
// "name/") from a plain sort by name, and, when the git CLI is there, that
// WriteTree writes the very tree `git mktree` writes for the same entries.
func TestOrder(t *testing.T) {
	// Entries are "name" for a file and "name/" for a directory, in the order
	// Git sorts them.
	cases := map[string][]string{
		"a directory sorts as name/":       {"a-b", "a.b", "a/", "a0"},
		"a file is a prefix of its longer": {"a", "a.b", "a0"},
		"dot and dash before a directory":  {"fleet-0000-x", "fleet-0000/", "fleet-00000/"},
		"bytes, not letters":               {"A", "Z", "_", "a", "z", "~", "é"},
		"a directory before what passes /": {"app/", "app0", "app:x", "app_x/", "appx"},
		"one entry":                        {"clusters/"},
	}
	git, gitErr := testenv.GitCLI()
	var repo string
	if gitErr == nil {
		repo = t.TempDir()
		runGit(t, git, "", "init", "--quiet", "--bare", repo)
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			entries := make([]object.TreeEntry, len(want))
			for i, n := range want {
				entries[i] = entry(n, i)
			}
			// Every rotation of the reversed order sorts to want.
			slices.Reverse(entries)
			for range entries {
				entries = append(entries[1:], entries[0])
				got := slices.Clone(entries)
				slices.SortFunc(got, Order)
				if names := sortNames(got); !slices.Equal(names, want) {
					t.Fatalf("sorted %v, want %v", names, want)
				}
			}
			st := memory.NewStorage()
			tree, err := WriteTree(st, slices.Clone(entries))
			if err != nil {
				t.Fatal(err)
			}
			if names := sortNames(tree.Entries); !slices.Equal(names, want) {
				t.Errorf("WriteTree wrote %v, want %v", names, want)
			}
			if gitErr != nil {
				t.Logf("no git CLI to compare with (%v)", gitErr)
				return
			}
			var in bytes.Buffer
			for _, e := range entries {
				typ := "blob"
				if e.Mode == filemode.Dir {
					typ = "tree"
				}
				fmt.Fprintf(&in, "%s %s %s\t%s\n", strings.TrimPrefix(e.Mode.String(), "0"), typ, e.Hash, e.Name)
			}
			out := runGitIn(t, git, repo, &in, "mktree", "--missing")
			if got := strings.TrimSpace(out); got != tree.Hash.String() {
				t.Errorf("WriteTree wrote %s, git mktree %s", tree.Hash, got)
			}
		})
	}
}

// entry is the tree entry of n ("name/" a directory), with a hash of its own.
func entry(n string, i int) object.TreeEntry {
	h := plumbing.NewHash(fmt.Sprintf("%040x", i+1))
	if name, dir := strings.CutSuffix(n, "/"); dir {
		return object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	return object.TreeEntry{Name: n, Mode: filemode.Regular, Hash: h}
}

// sortNames lists entries as the cases write them.
func sortNames(entries []object.TreeEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name
		if e.Mode == filemode.Dir {
			out[i] += "/"
		}
	}
	return out
}

// TestEditTree edits nested paths: files added in new and existing directories,
// a file replaced, a directory emptied (and so dropped), the rest kept as is.
func TestEditTree(t *testing.T) {
	st := memory.NewStorage()
	blob := func(s string) plumbing.Hash {
		h, err := WriteBlob(st, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var wrote int
	ed := Editor{Store: st, Wrote: func(*object.Tree) { wrote++ }}
	base, empty, err := ed.EditTree(nil, map[string]Edit{
		"clusters/dev/apps.yaml":  {Hash: blob("dev"), Mode: filemode.Regular},
		"clusters/prod/apps.yaml": {Hash: blob("prod"), Mode: filemode.Regular},
		"apps/web/run.sh":         {Hash: blob("#!/bin/sh"), Mode: filemode.Executable},
	})
	if err != nil || empty {
		t.Fatalf("first tree: empty %v, %v", empty, err)
	}
	if wrote != 6 {
		t.Errorf("wrote %d trees, want 6", wrote)
	}
	baseTree, err := object.GetTree(st, base)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := ed.EditTree(baseTree, map[string]Edit{
		"clusters/dev":            {Delete: true},
		"clusters/prod/apps.yaml": {Hash: blob("prod 2"), Mode: filemode.Regular},
		"clusters/prod/x.yaml":    {Hash: blob("x"), Mode: filemode.Regular},
		"apps/web/run.sh":         {Delete: true},
		"README.md":               {Hash: blob("readme"), Mode: filemode.Regular},
	})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := object.GetTree(st, h)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = tree.Files().ForEach(func(f *object.File) error {
		s, err := f.Contents()
		got[f.Name] = s
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"README.md": "readme", "clusters/prod/apps.yaml": "prod 2", "clusters/prod/x.yaml": "x"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if names := sortNames(tree.Entries); !slices.Equal(names, []string{"README.md", "clusters/"}) {
		t.Errorf("root %v: the emptied apps/ should be gone", names)
	}
	if _, empty, err := ed.EditTree(tree, map[string]Edit{"README.md": {Delete: true}, "clusters": {Delete: true}}); err != nil || !empty {
		t.Errorf("deleting everything: empty %v, %v", empty, err)
	}
}

func runGit(t *testing.T, git, dir string, args ...string) string {
	t.Helper()
	return runGitIn(t, git, dir, nil, args...)
}

func runGitIn(t *testing.T, git, dir string, stdin *bytes.Buffer, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command(git, args...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return string(out)
}
