package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// craftedEntry is one entry of a tree written with go-git's plumbing, which writes
// entries as given: names with '/', duplicates and any order, as a hostile server or
// committer can.
type craftedEntry struct {
	name    string
	mode    filemode.FileMode
	content string         // a blob's content or a symlink's target
	sub     []craftedEntry // a tree's entries
}

// writeCrafted stores the tree of entries in u's repository and returns its hash.
func (u *upstream) writeCrafted(entries []craftedEntry) plumbing.Hash {
	u.t.Helper()
	st := u.repo.Storer
	var tree object.Tree
	for _, e := range entries {
		var h plumbing.Hash
		if e.mode == filemode.Dir {
			h = u.writeCrafted(e.sub)
		} else {
			obj := st.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err != nil {
				u.t.Fatal(err)
			}
			if _, err := w.Write([]byte(e.content)); err != nil {
				u.t.Fatal(err)
			}
			w.Close()
			if h, err = st.SetEncodedObject(obj); err != nil {
				u.t.Fatal(err)
			}
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: e.name, Mode: e.mode, Hash: h})
	}
	obj := st.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		u.t.Fatal(err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		u.t.Fatal(err)
	}
	return h
}

// commitCrafted commits a crafted tree on top of main's head and moves main to it.
func (u *upstream) commitCrafted(entries []craftedEntry) string {
	u.t.Helper()
	head, err := u.repo.Head()
	if err != nil {
		u.t.Fatal(err)
	}
	sig := object.Signature{Name: "Mallory", Email: "m@example.com", When: time.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: "crafted", TreeHash: u.writeCrafted(entries), ParentHashes: []plumbing.Hash{head.Hash()}}
	obj := u.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		u.t.Fatal(err)
	}
	h, err := u.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		u.t.Fatal(err)
	}
	if err := u.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), h)); err != nil {
		u.t.Fatal(err)
	}
	return h.String()
}

// TestAttackExportSymlinkEscape: crafted trees that would make the export write
// outside its slot (security review H1) are refused with an error naming the entry;
// nothing is written outside the slot, and the last good revision stays current.
func TestAttackExportSymlinkEscape(t *testing.T) {
	blob := func(name, content string) craftedEntry {
		return craftedEntry{name: name, mode: filemode.Regular, content: content}
	}
	link := func(name, target string) craftedEntry {
		return craftedEntry{name: name, mode: filemode.Symlink, content: target}
	}
	dir := func(name string, sub ...craftedEntry) craftedEntry {
		return craftedEntry{name: name, mode: filemode.Dir, sub: sub}
	}
	cases := map[string]struct {
		tree func(outside string) []craftedEntry
		want string
	}{
		"slash in a name writes through a symlink": {
			tree: func(out string) []craftedEntry { return []craftedEntry{link("evil", out), blob("evil/x", "pwned")} },
			want: `"evil/x": entry name is not a single path element`,
		},
		"symlink and tree of one name": {
			tree: func(out string) []craftedEntry {
				return []craftedEntry{link("evil", out), dir("evil", blob("y", "pwned"))}
			},
			want: `"evil": two entries with this name`,
		},
		"absolute symlink target": {
			tree: func(out string) []craftedEntry { return []craftedEntry{link("abs", out)} },
			want: `is absolute`,
		},
		"relative symlink target leaving the slot": {
			tree: func(string) []craftedEntry { return []craftedEntry{dir("apps", link("up", "../../../../etc"))} },
			want: `leads outside the repository`,
		},
		"chain of symlinks leaving the slot": {
			tree: func(string) []craftedEntry {
				return []craftedEntry{link("a", "b"), dir("b", link("c", "../.."))}
			},
			want: `"b/c": symlink target "../.." leads outside`,
		},
		"dot-dot as a name": {
			tree: func(string) []craftedEntry { return []craftedEntry{dir("apps", dir("..", blob("x", "pwned")))} },
			want: `"apps/..": entry name is not a single path element`,
		},
		"backslash in a name": {
			tree: func(string) []craftedEntry { return []craftedEntry{blob(`..\x`, "pwned")} },
			want: `entry name is not a single path element`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir()
			up := newUpstream(t)
			good := up.commit(map[string]string{"apps/web/cm.yaml": "a: 1\n"}, "good")
			s := newSource(t, "file://"+up.dir)
			rev, err := s.Sync(t.Context())
			if err != nil || rev.SHA != good {
				t.Fatalf("first sync: %v %v", rev, err)
			}
			// Both a whole export (new cache) and an update of the other slot.
			bad := up.commitCrafted(tc.tree(outside))
			_, err = s.Sync(t.Context())
			var unsafe *UnsafeTreeError
			if !errors.As(err, &unsafe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bad) {
				t.Errorf("Sync of the crafted tree: %v, want an UnsafeTreeError with %q naming %s", err, tc.want, bad)
			}
			if s.Last() != rev {
				t.Errorf("Last() = %+v after a refused tree, want the last good %+v", s.Last(), rev)
			}
			fresh := newSource(t, "file://"+up.dir)
			if _, err := fresh.Sync(t.Context()); !errors.As(err, &unsafe) {
				t.Errorf("whole export of the crafted tree: %v, want an UnsafeTreeError", err)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 0 {
				t.Errorf("export wrote outside its slot: %v", entries)
			}
		})
	}
}

// TestAttackPlantedSlotIsNotTrusted: a file planted in an exported slot (by another
// local user, or left by a crash) while the agent was down is not rendered after a
// restart, although the slot's state file still names the head (security review M5).
func TestAttackPlantedSlotIsNotTrusted(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"apps/web/cm.yaml": "a: 1\n"}, "one")
	cache := t.TempDir()
	open := func() *Source {
		s, err := New(Config{URL: "file://" + up.dir, CacheDir: cache, Attempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rev, err := open().Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(rev.Dir, "apps", "web", "planted.yaml")
	if err := os.WriteFile(planted, []byte("kind: ClusterRoleBinding\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rev.Dir, "apps", "web", "cm.yaml"), []byte("a: evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rev2, err := open().Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rev2.Dir, "apps", "web", "planted.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("planted file still in the revision after a restart: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(rev2.Dir, "apps", "web", "cm.yaml")); string(data) != "a: 1\n" {
		t.Errorf("modified file after a restart: %q, want the committed content", data)
	}
}

// TestAttackCacheDirOthersCanWrite: a cache directory another local user created
// first, or that group or others can write, is refused before anything is read from
// it (security review M5); a missing one is created 0700.
func TestAttackCacheDirOthersCanWrite(t *testing.T) {
	base := t.TempDir()
	cases := map[string]struct {
		prepare func(dir string) error
		want    string
	}{
		"world-writable": {prepare: func(d string) error { return mkdirMode(d, 0o777) }, want: "mode 0777 lets group or others write"},
		"group-writable": {prepare: func(d string) error { return mkdirMode(d, 0o770) }, want: "mode 0770"},
		"owned by another user": {prepare: func(d string) error {
			if err := mkdirMode(d, 0o700); err != nil {
				return err
			}
			return os.Chown(d, 65534, 65534)
		}, want: "owned by uid 65534"},
		"a symlink to a directory": {prepare: func(d string) error {
			target := d + "-target"
			if err := mkdirMode(target, 0o700); err != nil {
				return err
			}
			return os.Symlink(target, d)
		}, want: "not a directory"},
		"missing: created 0700": {prepare: func(string) error { return nil }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if os.Geteuid() != 0 && strings.Contains(name, "another user") {
				t.Skip("chown to another user needs root")
			}
			dir := filepath.Join(base, strings.ReplaceAll(name, " ", "-"), "cache")
			if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tc.prepare(dir); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{URL: "file:///nonexistent", CacheDir: dir})
			if tc.want == "" {
				info, serr := os.Stat(dir)
				if err != nil || serr != nil || info.Mode().Perm() != 0o700 {
					t.Fatalf("New on a missing dir: %v; stat %v %v, want it created 0700", err, info, serr)
				}
				return
			}
			var cd *CacheDirError
			if !errors.As(err, &cd) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("New: %v, want a CacheDirError naming %s with %q", err, dir, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "repo.git")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused directory was used: %v", err)
			}
		})
	}
}

func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.Mkdir(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode) // past the umask
}

// TestAttackGitURLCredentialsNotOnDisk: credentials in the Git URL are used for
// requests but never written into the cache's repository configuration (security
// review L8), where any reader of the cache would find them.
func TestAttackGitURLCredentialsNotOnDisk(t *testing.T) {
	cache := t.TempDir()
	s, err := New(Config{URL: "https://robot:s3cr3t-pass@127.0.0.1:1/fleet.git", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, err := os.ReadFile(filepath.Join(cache, "repo.git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "s3cr3t") || strings.Contains(string(data), "robot") {
		t.Errorf("cache config holds the URL's credentials:\n%s", data)
	}
	if !strings.Contains(string(data), "https://127.0.0.1:1/fleet.git") {
		t.Errorf("cache config lacks the URL without credentials:\n%s", data)
	}
	auth, err := s.cfg.Auth()
	if err != nil || auth == nil || !strings.Contains(auth.String(), "robot") {
		t.Errorf("auth from the URL's userinfo: %v %v, want basic auth for robot", auth, err)
	}
}
