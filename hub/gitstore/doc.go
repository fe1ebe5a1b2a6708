// Package gitstore is the hub's handle on the GitOps repository: it reads the
// desired state (clusters, their apps and versions, the apps) at any revision
// and changes it with one commit per API call, authored by the caller.
//
// # Repository
//
// A Store works on a bare repository in Config.Dir, in one of two modes:
//
//   - Embedded (no Config.URL): the hub creates the repository, seeds its first
//     commit from Config.Seed, and serves it to agents itself (internal/gitserve, with
//     the Store as the ref source). Writes update the branch with a
//     compare-and-swap of the ref.
//   - Remote (Config.URL, HTTP basic or bearer auth): Dir is a local bare clone,
//     a cache holding neither URL nor credentials; it is fetched on Open, on
//     Refresh and when a write needs it. A write pushes its commit, requiring the
//     remote branch to still be where the commit's parent was.
//
// # Writes
//
// SetVersion, Unset, Rollback, AddCluster and RemoveCluster each make at most one
// commit ("set web=1.4.2 on prod-eu", "unset web on prod-eu", "rollback web on
// prod-eu to 1.4.1", "add cluster edge-1", "remove cluster edge-1"), author = the
// caller, committer = Config.Committer. Writes are serialized by the Store's
// lock and built in memory: blobs, trees and the commit are written as objects
// first, and only publishing (push, or the ref's compare-and-swap) makes the
// commit visible, so a failure leaves no half-written commit: a failed push
// resets the local branch to the remote's head.
//
// Before publishing, the changed cluster is loaded with sync/repo from the new
// tree: a write that would leave it invalid is a *ContentError and commits
// nothing. Names are DNS-1123 labels and versions follow sync/repo's rule, so
// no input can address a path or inject YAML.
//
// Optimistic concurrency: ifMatch is the revision the caller last read. When
// the file the write touches (the cluster's apps.yaml, or the cluster's
// directory for cluster writes) differs between ifMatch and the head, the write
// fails with ErrStaleRevision; changes to other files do not conflict. Two
// writers with the same ifMatch on the same file: one commits, one is stale.
//
// Push races: when someone commits directly to the remote between the Store's
// last fetch and its push, the push is refused (non-fast-forward); the Store
// fetches, re-applies the change on top of the new head (re-checking ifMatch
// and validity) and pushes again, at most Config.MaxAttempts times
// (ErrPushConflict after that). Both changes end up in the history.
//
// # apps.yaml edits
//
// EditAppsFile is the pure edit behind the writes: it splices the original
// bytes at the positions yaml.v3 reports, so a person's comments, order, blank
// lines, quoting and spacing survive; only layouts it cannot edit in place
// (flow-style lists, multi-line version scalars) are re-encoded through the
// yaml.v3 node tree, which keeps comments and order. Either way the result is
// decoded and compared with the expected content before it is used.
//
// # Reads
//
// Snapshot parses every cluster with sync/repo (a cluster that does not load
// carries the error instead of failing the snapshot) and caches the head's. A new
// head's snapshot reuses every cluster whose files, and the files they lead to
// (apps, link targets), are the same objects as in the previous one, so a commit
// to one cluster of thousands reloads one. Trees are read through a cache of
// decoded trees: a fleet's clusters/ directory is decoded once per version, not
// once per path looked up in it. Below that, a bare repository's objects are read
// through an object cache consulted before the disk (cachedStorage): go-git's own
// storage opens an object's file before it looks in its cache.
//
// The embedded repository's seed is built and validated in memory, then written
// as loose objects (see copyObjects for why not a packfile).
// History lists the commits that changed a cluster (or one app on it) with the
// app's version before and after. Changed tells which clusters' desired state
// differs between two revisions, for waking only the affected agents.
//
// Credentials never appear in logs or errors: the URL's userinfo is moved into
// the auth settings at Open, and RedactURL is available for callers.
package gitstore
