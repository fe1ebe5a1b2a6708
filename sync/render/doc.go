// Package render turns one app of a cluster into the Kubernetes objects to
// apply. docs/repo-layout.md describes the contract it implements.
//
// # Model
//
// Render(ctx, cluster, app) on a Renderer for a repository checkout:
//
//  1. precheck: walk the app's kustomization tree (apps/<app>/kustomization.yaml
//     and every local base, component or resource directory it builds on) and
//     refuse remote references (https://, git::, gh:, ssh://), absolute paths,
//     paths that leave the repository root, and Helm charts;
//  2. build: kustomize, with fluxcd/pkg/kustomize's settings (builtin plugins
//     only, so no exec or Go plugins; no load restrictions inside the FS). A
//     plain folder gets a kustomization generated in memory that lists its
//     *.yaml/*.yml files except app.yaml;
//  3. substitute: post-build substitution with fluxcd's envsubst, in the mode
//     app.yaml's substitute names (strict by default; defined leaves references
//     to undefined variables as written; off skips substitution), with Vars
//     (cluster labels as CLUSTER_LABEL_<key> < cluster vars < app vars
//     < built-ins APP_NAME, APP_VERSION, APP_NAMESPACE, CLUSTER_NAME); in
//     strict mode an undefined variable without a default is an error naming
//     it, the object and the substitute option. The object's YAML keeps the
//     source's quoting ("${n}" stays a string, ${n} takes the value's type) and
//     drops comments; objects without '$' are not touched. Objects come out
//     with JSON number types (int64, float64), so DeepCopy works on them;
//  4. finish: refuse objects without apiVersion, kind or metadata.name, give the
//     app.yaml namespace to namespaced objects without one (SetDefaultNamespace,
//     with BuiltinNamespaced or Options.IsNamespaced), add the ownership labels
//     of Options.Owner (object.LabelManagedBy and object.LabelApp=<app>,
//     overwriting any value the manifests carry; the only step that sets them),
//     refuse duplicates (same group,
//     kind, namespace, name) and more than MaxObjects objects, sort in the
//     order fluxcd/pkg/ssa applies, and hash the result (Result.Digest).
//
// An app that renders no objects is an error unless its app.yaml sets
// allowEmpty: true.
//
// # Helm apps
//
// An app whose app.yaml has a helm block renders a chart in-process (renderHelm):
// values are substituted, the chart's output never is. When the app folder holds a
// kustomization, the templates' objects are offered to it as ChartResource
// (chart.rendered.yaml, in the in-memory layer only), marked with their template
// so that what comes out of the chart is still not substituted while the objects
// the kustomization adds are; hooks and the CRDs of crds/ bypass it. The chart is
// rendered twice and both renders go through the whole pipeline; they must give
// the same objects and hooks, except for the content of objects annotated
// object.ApplyAnnotation: object.ApplyCreateOnly, which digest hashes by identity,
// labels and annotations only.
//
// # Confinement
//
// Kustomize reads the repository only through one file system stack:
//
//	fluxcd MakeFsInMemory        writes (a generated kustomization, chart.rendered.yaml) go to memory
//	  guardedFS                  read-only; size limit; alias-bomb guard; records reads
//	    fluxcd MakeFsOnDiskSecure every path, after symlinks, must be inside the root
//
// so a build can read nothing outside the repository root (not through '..',
// not through a symlink, absolute or relative) and writes nothing to the
// checkout. What kustomize could reach without the FS is closed before the
// build: URLs (kustomize would fetch them over HTTP or run git) by the precheck,
// exec and Go plugins by kustomize's disabled plugin config, Helm by the
// precheck. Files over repo.MaxFileSize are refused before they are read, and a
// YAML file whose aliases expand past repo.MaxYAMLNodes is refused before
// kustomize parses it: kustomize's kyaml expands aliases without a limit and
// would run out of memory on a billion-laughs file.
//
// # Cost
//
// One render is one kustomize build plus one YAML round trip per object that
// contains '$': BenchmarkRenderCluster renders 100 apps of 10 objects in about
// 0.3 s on the 2-core CI machine, kustomize taking half of it. Builds are
// serialized process-wide (kustomize's global state); fluxcd's kustomize.Build,
// which also resets kustomize's OpenAPI schema (~80 ms a build), is used only for
// kustomizations that set openapi. Nothing is copied: the generated
// kustomization lives in memory, everything else is read in place.
//
// # Limits of the namespace default
//
// Without an apiserver, BuiltinNamespaced knows the cluster-scoped kinds of
// Kubernetes and the kinds defined by CRDs in the same render; any other kind is
// taken as namespaced. A cluster-scoped custom resource whose CRD comes from
// another app would wrongly get the namespace: the agent, which has a
// RESTMapper, should pass a RESTMapper-backed NamespacedFunc in
// Options.IsNamespaced (SetDefaultNamespace is exported for callers that
// default namespaces themselves). Objects that already have a namespace keep it, even
// cluster-scoped ones.
package render
