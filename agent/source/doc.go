// Package source keeps a cluster agent's copy of the GitOps repository.
//
// The model: one branch of one remote, fetched shallow (depth 1) into a bare
// repository in the cache directory. Before fetching, Head asks the remote for the
// branch's commit (a ref listing, no objects) so an unchanged branch costs one small
// request. Each fetched revision is exported into its own read-only directory
// (cache/rev/<sha>), which the renderer reads; the previous revision's directory is
// kept until the next one is ready, so a failed fetch never leaves the agent without
// its last good tree.
//
// Network and server failures come back as *UnavailableError after bounded retries
// with backoff: the agent then keeps the cluster as last synced and never prunes.
// Credentials are read from files at each attempt (so rotated secrets are picked up)
// and never appear in errors or logs.
package source
