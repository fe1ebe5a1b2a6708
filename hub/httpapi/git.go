package httpapi

import (
	"context"
	"net/http"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gitserve"
)

// basicOrBearer returns the credential a Git client or a browser sends: the basic-auth
// password (the user name is ignored) or a bearer token.
func basicOrBearer(r *http.Request) (string, bool) { return gitserve.Token(r) }

// serveGit serves the repository read-only at /git/<cluster>.git to the agent of that
// cluster (or an admin). An agent token gets its cluster's view (gitserve.WithView):
// everything outside clusters/ and clusters/<cluster>/ alone, one parentless commit
// per branch head naming the source commit, so no other cluster's files or history
// can be fetched with it. An admin token gets the whole repository.
func (a *API) serveGit(w http.ResponseWriter, r *http.Request, c *caller) error {
	if a.cfg.GitServer == nil {
		return newError(apiv1.CodeNotFound, "", "this hub does not serve Git: the repository is remote")
	}
	cluster, ok := strings.CutSuffix(r.PathValue("repo"), ".git")
	if !ok {
		return newError(apiv1.CodeNotFound, "repo", "no repository %q: use /git/<cluster>.git", truncate(r.PathValue("repo")))
	}
	if err := apiv1.ValidateName("repo", cluster); err != nil {
		return err
	}
	if !c.admin && c.cluster != cluster {
		return errForbidden("the token is not the agent token of cluster " + cluster)
	}
	// A pack may take longer than the server's WriteTimeout to send.
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.GitTimeout)
	defer cancel()
	if !c.admin {
		ctx = gitserve.WithView(ctx, cluster)
	}
	extendDeadlines(w, a.cfg.GitTimeout)
	a.cfg.GitServer.ServeHTTP(w, r.WithContext(ctx))
	return nil
}
