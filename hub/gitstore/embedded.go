package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/outpost-gitops/outpost/internal/gitobj"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// maxSeedFiles bounds the files of a seed directory. A fleet of 10 000 clusters has at
// least one file per cluster (apps.yaml), usually two, plus its apps: the bound leaves
// room for that and still stops a seed that is not a GitOps repository.
const maxSeedFiles = 100_000

// openEmbedded opens the bare repository in Dir, creating and seeding it when
// Dir holds none (or holds one without the branch).
func (s *Store) openEmbedded(ctx context.Context) error {
	r, err := s.openBare("repository")
	if err != nil {
		return err
	}
	cfg, err := r.Config()
	if err != nil {
		return fmt.Errorf("read config of %s: %w", s.cfg.Dir, err)
	}
	if !cfg.Core.IsBare {
		return &ValidationError{Field: InputDir, Msg: s.cfg.Dir + " holds a repository with a worktree; the embedded repository must be bare"}
	}
	s.repo = r
	ref, err := r.Reference(s.branch, false)
	switch {
	case err == nil:
		s.setHead(ref.Hash())
		return nil
	case !errors.Is(err, plumbing.ErrReferenceNotFound):
		return fmt.Errorf("read %s of %s: %w", s.branch, s.cfg.Dir, err)
	}
	h, err := s.seed(ctx)
	if err != nil {
		return err
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(s.branch, h)); err != nil {
		return fmt.Errorf("set %s of %s: %w", s.branch, s.cfg.Dir, err)
	}
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, s.branch)); err != nil {
		return fmt.Errorf("set HEAD of %s: %w", s.cfg.Dir, err)
	}
	s.setHead(h)
	s.log.Info("created the embedded repository", "dir", s.cfg.Dir, "seed", s.cfg.Seed, "head", h.String())
	return nil
}

// openBare opens the repository in Dir, initializing a bare one (the branch its
// default) when Dir holds none, on a cachedStorage when it is bare; what names it in
// errors.
func (s *Store) openBare(what string) (*git.Repository, error) {
	r, err := git.PlainOpen(s.cfg.Dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", s.cfg.Dir, err)
		}
		r, err = git.PlainInitWithOptions(s.cfg.Dir, &git.PlainInitOptions{
			Bare: true, InitOptions: git.InitOptions{DefaultBranch: s.branch}})
	}
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", what, s.cfg.Dir, err)
	}
	return withObjectCache(r, s.cfg.Dir)
}

// seed writes the first commit: the files of Config.Seed, or an empty tree. The
// objects are built and validated in memory, then written to the repository: a seed
// of 10 000 clusters is some 30 000 objects, which validating from disk would read
// back one file each.
func (s *Store) seed(ctx context.Context) (plumbing.Hash, error) {
	mem := memory.NewStorage()
	edits := map[string]gitobj.Edit{}
	msg := "Create the GitOps repository"
	if s.cfg.Seed != "" {
		var err error
		if edits, err = s.readSeed(ctx, mem); err != nil {
			return plumbing.ZeroHash, err
		}
		msg = "Seed the GitOps repository from " + filepath.Base(s.cfg.Seed)
	}
	trees := newTreeCache(mem)
	treeHash, _, err := writeTree(trees, nil, edits)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write seed tree: %w", err)
	}
	tree, err := object.GetTree(mem, treeHash)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read seed tree: %w", err)
	}
	if err := validateTree(ctx, newTreeFS(trees, tree)); err != nil {
		return plumbing.ZeroHash, &ValidationError{Field: InputSeed, Msg: fmt.Sprintf("%s does not load: %s", s.cfg.Seed, err), Err: err}
	}
	now := time.Now()
	sig := object.Signature{Name: s.cfg.Committer.Name, Email: s.cfg.Committer.Email, When: now}
	h, err := writeCommit(mem, &object.Commit{Author: sig, Committer: sig, Message: msg + "\n", TreeHash: treeHash})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := copyObjects(mem, s.repo.Storer); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write the seed's objects to %s: %w", s.cfg.Dir, err)
	}
	return h, nil
}

// copyObjects copies every object of src into dst.
//
// Loose objects, not one packfile: go-git (v5.19) reading packs in concurrent
// storages, as internal/gitserve does with one storage per fetch, intermittently
// fails to find packed objects (TestEmbeddedFetchWhileWriting caught it), so the
// embedded repository stays loose.
func copyObjects(src *memory.Storage, dst storer.EncodedObjectStorer) error {
	iter, err := src.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		return err
	}
	return iter.ForEach(func(o plumbing.EncodedObject) error {
		_, err := dst.SetEncodedObject(o)
		return err
	})
}

// readSeed writes every file of the seed directory as a blob into mem. Directories
// named .git are skipped; symbolic links are stored as links.
func (s *Store) readSeed(ctx context.Context, mem storer.EncodedObjectStorer) (map[string]gitobj.Edit, error) {
	edits := map[string]gitobj.Edit{}
	root := s.cfg.Seed
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if len(edits) >= maxSeedFiles {
			return fmt.Errorf("more than %d files", maxSeedFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var data []byte
		mode := filemode.Regular
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			data, mode = []byte(filepath.ToSlash(target)), filemode.Symlink
		case info.Mode().IsRegular():
			if info.Size() > repo.MaxFileSize*16 {
				return fmt.Errorf("%s: %d bytes is too big for a seed file", rel, info.Size())
			}
			if data, err = os.ReadFile(p); err != nil {
				return err
			}
			if info.Mode()&0o111 != 0 {
				mode = filemode.Executable
			}
		default:
			return fmt.Errorf("%s: not a regular file or symbolic link", rel)
		}
		h, err := gitobj.WriteBlob(mem, data)
		if err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
		edits[rel] = gitobj.Edit{Hash: h, Mode: mode}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read seed %s: %w", root, err)
	}
	return edits, nil
}

// validateTree loads every cluster of fsys with sync/repo.
func validateTree(ctx context.Context, fsys treeFS) error {
	names, err := repo.ListClusters(fsys)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if _, err := repo.Load(ctx, fsys, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
