// Package gitserve serves a Git repository to agents over Git smart HTTP,
// read-only, so that a hub with its embedded repository needs no other Git
// server.
//
// # Protocol
//
// The Handler speaks protocol v0 in its stateless (HTTP) form:
//
//	GET  <prefix>/info/refs?service=git-upload-pack   the ref advertisement
//	POST <prefix>/git-upload-pack                     one negotiation round, or the pack
//
// A client asking for protocol v2 (Git-Protocol: version=2) gets the v0
// advertisement and falls back, as with any v0 server. Advertised capabilities:
// multi_ack, multi_ack_detailed (the git CLI's multi-round negotiation),
// side-band(-64k), ofs-delta, shallow (deepen <n>; with unshallow), no-progress,
// allow-tip/reachable-sha1-in-want (an agent may fetch the exact revision the
// hub announced). Not offered: thin packs, deepen-since/deepen-not, filters,
// include-tag. The negotiation follows git's upload-pack (ACK common / NAK per
// round, final ACK or NAK on done) but never sends "ready"; the pack holds the
// objects reachable from the wants minus those reachable from the common haves
// (a commit-time-ordered walk, like "git rev-list wants ^haves", with the trees
// of the edge commits taken as present on the client). The wanted trees are
// walked paired with the edge commits' trees at the same path, so a fetch reads
// the trees along the paths that changed, not the whole repository; an object
// the client has at another path may be sent again. A deepen round before
// "done" gets its shallow update from the commits alone.
//
// Every request builds its own go-git storage on Dir: go-git storages are not
// safe for concurrent use, and a fresh one sees objects written since. Refs
// come from a RefSource when given (hub/gitstore's Store advertises the head it
// knows, so an agent never sees a ref ahead of its objects), else from Dir.
//
// # Security
//
// Every request is first passed to Config.Authorize (the hub checks a cluster
// token taken with Token from the basic-auth password or a bearer header); a
// refusal is a 401 with a Basic challenge and reveals nothing. Pushes
// (git-receive-pack, advertisement or POST) are refused with 403: desired state
// changes through the hub's API, which commits with an author. Request bodies
// are bounded after gzip decompression (Config.MaxRequestBytes) and packs are
// built at most Config.MaxConcurrentPacks at a time: an answer is built whole (in
// memory, spilled to a temporary file past 32 MiB) under a slot, and sent after the
// slot is released, each chunk within Config.IdleWriteTimeout; Config.Key bounds the
// requests in flight per credential. Wants must be reachable from an advertised ref.
//
// # Per-cluster views
//
// A request for which Config.View names a cluster (the hub sets it, with WithView,
// for agent tokens) is served that cluster's view of the repository: each advertised
// ref points at a parentless commit made for the cluster (same author, committer and
// message, ending with the line "Outpost-Source-Commit: <commit>") whose tree is the
// commit's with clusters/ holding only clusters/<cluster>/; every other subtree is the
// repository's own object, so a fetch of the next view sends only what changed. View
// objects live in a bounded in-memory cache, where the agent's previous view is found
// again when it says it has it. Only the view's objects are reachable from its refs,
// so no want can name another cluster's files or the repository's history.
package gitserve
