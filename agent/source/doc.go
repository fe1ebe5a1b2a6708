// Package source keeps a cluster agent's copy of the GitOps repository.
//
// The model: one branch of one remote, fetched shallow (depth 1) into a bare
// repository in the cache directory. Before fetching, Head asks the remote for the
// branch's commit (a ref listing, no objects) so an unchanged branch costs one small
// request. Fetched revisions are exported, in turn, into one of two directories
// (cache/rev/a and cache/rev/b), which the renderer reads: the next revision goes
// into the directory the current one is not in, so a failed fetch or export never
// leaves the agent without its last good tree. That directory holds the revision
// before, so only the difference between the two trees is written (a commit that
// bumps one cluster of a 10 000-cluster repository rewrites one file, not the
// repository); a directory whose state file (cache/rev/<slot>.json, written last) is
// missing is rewritten whole. With Config.Cluster set, the other clusters'
// directories (clusters/<other>/) are left out of the export altogether.
//
// Network and server failures come back as *UnavailableError after bounded retries
// with backoff: the agent then keeps the cluster as last synced and never prunes.
// Credentials are read from files at each attempt (so rotated secrets are picked up)
// and never appear in errors or logs.
package source
