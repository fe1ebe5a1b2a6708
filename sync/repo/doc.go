// Package repo loads and validates the GitOps repository contract: what the
// repository says about one cluster. docs/repo-layout.md is the contract in full;
// this package is its reference implementation.
//
// # Model
//
//	clusters/<cluster>/cluster.yaml  optional  labels, vars          -> ClusterConfig
//	clusters/<cluster>/apps.yaml     required  apps: [{name, version, vars}] -> AppsList
//	apps/<app>/app.yaml              optional  namespace, prune, drift, healthTimeout,
//	                                           dependsOn, allowEmpty, force -> AppConfig
//
// Load(ctx, fsys, cluster) reads the three kinds of file for one cluster and
// returns a ClusterSpec: the cluster's labels and vars, its apps (apps.yaml entry
// plus app.yaml with defaults) in file order, and Order, the apps grouped into
// dependency levels. The Parse* functions are the pure per-file decoders Load is
// built from; Order is the pure topological sort.
//
// # Strictness
//
// Decoding is strict: unknown fields, duplicate keys, wrong types, more than one
// YAML document, custom tags and YAML anchors/aliases are errors. Every content
// error is an *Error naming the repo-relative file, the line and the field path
// ("clusters/prod/apps.yaml:4: apps[1].version: must not be empty"); a content
// error does not go away on retry, I/O errors (wrapped) might. IsContentError
// tells them apart.
//
// # Confinement and limits
//
// Load reads through an fs.FS and only ever opens paths it built from validated
// names (DNS-1123 labels: no '/', '..' or control characters), so a name cannot
// address a file outside clusters/<cluster>/ or apps/<app>/. LoadDir opens the
// repository as an os.Root, whose FS refuses symlinks leading outside the root.
// ReadFile refuses non-regular files and files over MaxFileSize (1 MiB) before
// reading them. Anchors and aliases are refused by a walk that never follows an
// alias, so a billion-laughs file fails in time linear in its size;
// CheckYAMLExpansion is the same guard for files where aliases are allowed
// (manifests, used by sync/render).
package repo
