// Package sync is the root of Outpost's sync engine: the steps that turn the
// GitOps repository into a converged cluster, free of hub and agent concerns
// (no HTTP, no Git remotes). It holds no code; each step is a subpackage, so no
// package named sync shadows the standard library's:
//
//	object     one object identity (Ref) and who Outpost is (Owner), shared by all
//	field      one field-path model: paths, equality, list matching, secret policy
//	repo       load and validate the repository contract (clusters/, apps/)
//	render     kustomize build + substitution of one app for one cluster
//	plan       pair desired objects with live ones, field-level diff
//	apply      staged server-side apply
//	inventory  what Outpost applied, for pruning
//	health     kstatus readiness of an app's objects
//	drift      fields Outpost owns that someone else changed
//
// Results are typed data with JSON tags (ClusterSpec, render.Result, change
// sets, drift reports), not log lines. Arrows point one way: agent and hub
// import sync; sync imports only libraries, and a step may import an earlier
// step (render imports repo).
//
// # Confinement
//
// Everything the engine reads from the repository stays inside the checkout:
// repo reads through an fs.FS (an os.Root for a directory on disk) and only
// opens paths built from validated names; render reads through fluxcd's secure
// file system, which resolves symlinks and refuses any path outside the root,
// under a read-only layer that enforces the per-file size limit and refuses
// YAML alias bombs, and refuses remote bases, URLs, Helm and exec plugins before
// kustomize runs. sync/testdata/bad is the shared corpus of inputs that must be
// refused, with the error each must give.
package sync
