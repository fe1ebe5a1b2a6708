package gitstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// remoteName is the name of the in-memory remote; it is never written to the
// local clone's config, so neither are the URL and credentials.
const remoteName = "origin"

// errRemoteMoved says a push lost a race: the remote branch moved since the
// commit's parent was fetched.
var errRemoteMoved = errors.New("remote branch moved")

// remote is the remote repository of a Store: fetch into the local bare clone,
// push from it.
type remote struct {
	url      string // without credentials
	branch   plumbing.ReferenceName
	tracking plumbing.ReferenceName // refs/remotes/origin/<branch>
	auth     transport.AuthMethod
	cfg      Config
	r        *git.Remote
	repo     *git.Repository
	log      *slog.Logger
}

// openRemote opens (or creates) the local bare clone in Dir and fetches.
func (s *Store) openRemote(ctx context.Context) error {
	r, err := s.openBare("local clone")
	if err != nil {
		return err
	}
	s.repo = r
	s.remote = newRemote(r, s.cfg, s.branch, s.log)
	h, err := s.remote.fetch(ctx)
	if err != nil {
		ref, rerr := r.Reference(s.remote.tracking, false)
		if rerr != nil {
			return err
		}
		s.log.Warn("remote unreachable; starting from the local clone", "url", s.remote.url, "head", ref.Hash().String(), "err", err)
		h = ref.Hash()
	}
	s.setHead(h)
	return nil
}

func newRemote(r *git.Repository, cfg Config, branch plumbing.ReferenceName, log *slog.Logger) *remote {
	rm := &remote{
		url:      cfg.URL,
		branch:   branch,
		tracking: plumbing.NewRemoteReferenceName(remoteName, branch.Short()),
		cfg:      cfg,
		repo:     r,
		log:      log,
	}
	switch {
	case cfg.BearerToken != "":
		rm.auth = &githttp.TokenAuth{Token: cfg.BearerToken}
	case cfg.Password != "":
		rm.auth = &githttp.BasicAuth{Username: cfg.Username, Password: cfg.Password}
	}
	rm.r = git.NewRemote(r.Storer, &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{cfg.URL},
		Fetch: []config.RefSpec{rm.fetchSpec()},
	})
	return rm
}

func (r *remote) fetchSpec() config.RefSpec {
	return config.RefSpec("+" + r.branch.String() + ":" + r.tracking.String())
}

// fetch fetches the branch and returns the remote's head.
func (r *remote) fetch(ctx context.Context) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.NetworkTimeout)
	defer cancel()
	err := r.r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{r.fetchSpec()},
		Auth:       r.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %w", r.branch.Short(), r.url, err)
	}
	ref, err := r.repo.Reference(r.tracking, false)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %w", r.branch.Short(), r.url, err)
	}
	return ref.Hash(), nil
}

// push pushes commit, a child of base, to the branch, requiring the remote
// branch to still be at base. When the push fails because the remote moved, it
// returns the remote's new head and errRemoteMoved; when it fails but the remote
// turns out to hold commit (the answer was lost), it succeeds.
func (r *remote) push(ctx context.Context, repo *git.Repository, base, commit plumbing.Hash) (plumbing.Hash, error) {
	if err := repo.Storer.SetReference(plumbing.NewHashReference(r.branch, commit)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("set %s: %w", r.branch, err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.NetworkTimeout)
	err := r.r.PushContext(pctx, &git.PushOptions{
		RemoteName:        remoteName,
		RefSpecs:          []config.RefSpec{config.RefSpec(r.branch.String() + ":" + r.branch.String())},
		RequireRemoteRefs: []config.RefSpec{config.RefSpec(base.String() + ":" + r.branch.String())},
		Auth:              r.auth,
	})
	cancel()
	if err == nil {
		if err := repo.Storer.SetReference(plumbing.NewHashReference(r.tracking, commit)); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("set %s: %w", r.tracking, err)
		}
		return commit, nil
	}
	// Undo the local branch, then find out why the push failed.
	if rerr := repo.Storer.SetReference(plumbing.NewHashReference(r.branch, base)); rerr != nil {
		r.log.Warn("reset local branch after a failed push", "err", rerr)
	}
	head, ferr := r.fetch(ctx)
	switch {
	case ferr != nil:
		return plumbing.ZeroHash, fmt.Errorf("push to %s: %w (fetch after it: %v)", r.url, err, ferr)
	case head == commit:
		return commit, nil
	case head != base:
		r.log.Info("push lost a race", "url", r.url, "base", base.String(), "remote", head.String(), "err", err)
		return head, errRemoteMoved
	}
	return plumbing.ZeroHash, fmt.Errorf("push to %s: %w", r.url, err)
}
