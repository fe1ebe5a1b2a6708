package render

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Options tune a Renderer. The zero value is ready to use.
type Options struct {
	// IsNamespaced decides which objects get the app's default namespace. Nil:
	// BuiltinNamespaced (well-known kinds plus the CRDs in the render). When it
	// fails for a kind defined by a CRD in the same render, that CRD decides.
	IsNamespaced NamespacedFunc
	// Owner sets the ownership labels every rendered object carries (the only step
	// that sets them: apply requires them). Default object.DefaultOwner().
	Owner object.Owner
	// KubeVersion is the cluster's Kubernetes version ("v1.33.2"), for Helm charts'
	// .Capabilities.KubeVersion and Chart.yaml kubeVersion. Empty: Helm's default.
	// The agent sets it from discovery.
	KubeVersion string
	// APIVersions are the cluster's API versions, as "group/version" and
	// "group/version/Kind", for Helm charts' .Capabilities.APIVersions. Nil: Helm's
	// built-in list. The agent sets it from discovery.
	APIVersions []string
	// Charts fetches the remote charts of Helm apps (helm.repo, helm.oci). Nil: such an
	// app fails to render (only the agent fetches charts).
	Charts ChartFetcher
	// ChartLimits bound the size of a chart. Zero: chart.Limits defaults.
	ChartLimits chart.Limits
	// Lookup serves the lookup function of Helm apps with helm.lookup: true, read-only
	// and restricted to the app's namespace (plus cluster-scoped kinds). Nil: lookup
	// returns empty, as for every app without helm.lookup (outpost diff). The agent
	// sets it (NewClusterReader).
	Lookup ClusterReader
	// LookupMaxList bounds the objects a list lookup (lookup with an empty name) may
	// return: the list is read in pages and a longer one fails the render naming the
	// lookup, instead of holding a namespace's every Secret in memory. Zero: 5000.
	LookupMaxList int
	// Installed reports whether an app already has an inventory on the cluster: its
	// Helm chart then renders as an upgrade (.Release.IsUpgrade true, IsInstall
	// false). Nil: every chart renders as an install (outpost diff). The engine sets
	// it from the inventories.
	Installed func(app string) bool
}

// Result is one app rendered for one cluster.
type Result struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// App is the app's name.
	App string `json:"app"`
	// Version is the app's version from apps.yaml.
	Version string `json:"version"`
	// Namespace is the default namespace from app.yaml, if any.
	Namespace string `json:"namespace,omitempty"`
	// Objects are the rendered objects, in apply order (see sortObjects).
	Objects []*unstructured.Unstructured `json:"objects"`
	// Sources are the repo-relative files the build read, sorted.
	Sources []string `json:"sources"`
	// GeneratedKustomization is true when the app folder had no kustomization
	// and one was generated (in memory) listing its YAML files.
	GeneratedKustomization bool `json:"generatedKustomization"`
	// Hooks are a Helm chart's hook objects, sorted by phase and weight; they are not
	// in Objects (nor in the inventory).
	Hooks []Hook `json:"hooks,omitempty"`
	// Digest is "sha256:<hex>" of the rendered objects (and hooks): equal digests
	// mean equal output.
	Digest string `json:"digest"`
}

// Renderer renders apps of one repository checkout. It is safe for concurrent
// use; kustomize builds are serialized (kustomize has process-wide state), the
// rest of a render runs in parallel.
type Renderer struct {
	root   string             // absolute, symlinks resolved
	secure filesys.FileSystem // fluxcd's secure on-disk FS rooted at root
	opts   Options
}

// rootElement is what kustomize's in-memory filesystem accepts as a path element (the
// generated kustomization of a plain folder is written there under the root's path).
var rootElement = regexp.MustCompile(`^[a-zA-Z0-9._:-]+$`)

// CheckRootPath refuses a repository path kustomize could not build under, naming the
// element at fault: only letters, digits, '.', '_', '-' and ':' are allowed.
func CheckRootPath(abs string) error {
	for _, el := range strings.Split(filepath.ToSlash(abs), "/") {
		if el != "" && !rootElement.MatchString(el) {
			return fmt.Errorf("repository root %s: path element %q has characters kustomize cannot build under (use only letters, digits, '.', '_', '-' and ':')", abs, el)
		}
	}
	return nil
}

// New returns a Renderer for the repository checked out at root.
func New(root string, opts Options) (*Renderer, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	if err := CheckRootPath(abs); err != nil {
		return nil, err
	}
	secure, err := securefs.MakeFsOnDiskSecure(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	opts.Owner = opts.Owner.WithDefaults()
	return &Renderer{root: abs, secure: secure, opts: opts}, nil
}

// Render renders app for cluster: kustomize build of apps/<app> (a
// kustomization is generated in memory for a plain folder), post-build
// substitution, default namespace, ownership labels, checks. Errors are *Error.
func (r *Renderer) Render(ctx context.Context, cluster *repo.ClusterSpec, app *repo.App) (*Result, error) {
	fail := func(object string, err error) error {
		return newError(r.root, cluster.Name, app.Name, object, err)
	}
	if err := repo.ValidateName(app.Name); err != nil {
		return nil, fail("", fmt.Errorf("app %w", err))
	}
	if app.Config.Helm != nil {
		return r.renderHelm(ctx, cluster, app)
	}
	gfs := newGuardedFS(r.secure, r.root)
	resMap, generated, err := r.build(ctx, gfs, filepath.Join(r.root, repo.AppsDir, app.Name), nil)
	if err != nil {
		return nil, fail("", err)
	}
	objs, err := r.postBuild(ctx, resMap, cluster, app)
	if err != nil {
		return nil, err
	}
	sum, err := digest(objs)
	if err != nil {
		return nil, fail("", err)
	}
	return &Result{
		Cluster: cluster.Name, App: app.Name, Version: app.Version, Namespace: app.Config.Namespace,
		Objects: objs, Sources: gfs.sources(), GeneratedKustomization: generated, Digest: sum,
	}, nil
}

// build runs the precheck and kustomize over the guarded FS with an in-memory
// layer on top, where a generated kustomization and the virtual files (absolute
// path -> content: a Helm app's chart.rendered.yaml) live; nothing is written to
// disk. The precheck takes the virtual files as existing.
func (r *Renderer) build(ctx context.Context, gfs *guardedFS, dir string, virtual map[string][]byte) (resmap.ResMap, bool, error) {
	if !gfs.IsDir(dir) {
		_, err := gfs.ReadFile(dir) // the secure FS's error for a dir outside the root
		var ce *securefs.ConstraintError
		if !errors.As(err, &ce) {
			err = &repo.Error{File: gfs.rel(dir), Msg: "app directory not found"}
		}
		return nil, false, err
	}
	pc := &precheck{fsys: gfs, root: r.root, visited: map[string]bool{}, virtual: map[string]bool{}}
	for p := range virtual {
		pc.virtual[p] = true
	}
	if err := pc.dir(dir, 0); err != nil {
		return nil, false, err
	}
	// The second, independent layer: every kustomization kustomize itself reads is
	// checked again for references it would fetch or clone (kustomize v0.21 has no
	// hook to replace its git-exec cloner).
	gfs.guardKustomizations = true
	overlay := securefs.MakeFsInMemory(gfs)
	for p, data := range virtual {
		if err := overlay.WriteFile(p, data); err != nil {
			return nil, false, err
		}
	}
	generated := findKustomization(gfs, dir) == ""
	if generated {
		resources, err := generateKustomization(gfs, dir)
		if err != nil || len(resources) == 0 {
			return nil, true, err // an empty app renders to no objects
		}
		data, err := kustomizationYAML(resources)
		if err != nil {
			return nil, true, err
		}
		if err := overlay.WriteFile(filepath.Join(dir, "kustomization.yaml"), data); err != nil {
			return nil, true, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, generated, err
	}
	m, err := runKustomize(overlay, dir, pc.openapi)
	if err != nil && gfs.refused != nil {
		err = gfs.refused
	}
	return m, generated, err
}

// kustomizeMu serializes every kustomize build of the process. It guards
// kustomize's process-wide state, which is not safe for concurrent builds:
// kyaml/openapi's global schema (globalSchema, customSchema and the Kubernetes
// OpenAPI version), which a kustomization's openapi field replaces and which
// fluxcd's kustomize.Build resets around each build, and the maps behind
// kustomize's concurrent map read/write panics (kubernetes-sigs/kustomize#3659).
// kyaml's own schemaLock guards single calls, not a whole build. It is the one
// piece of package-level state, as in fluxcd/pkg/kustomize; whatever else runs
// kustomize in the process takes it through LockKustomize.
var kustomizeMu sync.Mutex

// LockKustomize takes the process-wide kustomize lock (see kustomizeMu) and
// returns its unlock. Code outside this package that runs kustomize (krusty)
// must hold it for the whole build, as manifests.Build does; Render takes it
// itself.
func LockKustomize() (unlock func()) {
	kustomizeMu.Lock()
	return kustomizeMu.Unlock
}

// runKustomize builds dir with the options of fluxcd's kustomize.Build (no load
// restrictions inside the FS, builtin plugins only: no exec, no Go plugins, no
// Helm). fluxcd's Build also resets kustomize's global OpenAPI schema around
// every build, which costs ~80 ms; that isolation only matters for a
// kustomization with an openapi field, so only those go through it.
func runKustomize(fsys filesys.FileSystem, dir string, openapi bool) (m resmap.ResMap, err error) {
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	if openapi {
		return kustomize.Build(fsys, dir)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kustomize build panicked: %v", p)
		}
	}()
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	return k.Run(fsys, dir)
}

// postBuild substitutes variables, converts, checks and labels the objects.
func (r *Renderer) postBuild(ctx context.Context, m resmap.ResMap, cluster *repo.ClusterSpec, app *repo.App) ([]*unstructured.Unstructured, error) {
	fail := func(object string, err error) error {
		return newError(r.root, cluster.Name, app.Name, object, err)
	}
	if m == nil || m.Size() == 0 {
		if !app.Config.AllowEmpty {
			return nil, fail("", fmt.Errorf("renders no objects; set allowEmpty: true in %s/%s to allow an empty app (it prunes everything)", app.Path, repo.AppFile))
		}
		return []*unstructured.Unstructured{}, nil
	}
	if m.Size() > MaxObjects {
		return nil, fail("", fmt.Errorf("renders %d objects, more than the limit of %d", m.Size(), MaxObjects))
	}
	objs, err := toObjects(ctx, m, newSubstituter(Vars(cluster, app), app.Config.Substitute, repo.AppsDir+"/"+app.Name+"/"+repo.AppFile), fail)
	if err != nil {
		return nil, err
	}
	return r.finish(objs, app, fail)
}

// toObjects substitutes and converts every resource.
func toObjects(ctx context.Context, m resmap.ResMap, sub *substituter, fail func(string, error) error) ([]*unstructured.Unstructured, error) {
	objs := make([]*unstructured.Unstructured, 0, m.Size())
	for _, res := range m.Resources() {
		if err := ctx.Err(); err != nil {
			return nil, fail("", err)
		}
		obj, err := sub.object(res)
		if err != nil {
			return nil, fail(object.Ref{Group: res.GetGvk().Group, Kind: res.GetKind(), Namespace: res.GetNamespace(), Name: res.GetName()}.String(), err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
	return objs, nil
}

// finish checks identities, sets namespaces and labels, refuses duplicates and sorts.
func (r *Renderer) finish(objs []*unstructured.Unstructured, app *repo.App, fail func(string, error) error) ([]*unstructured.Unstructured, error) {
	for _, o := range objs {
		if msg := checkIdentity(o); msg != "" {
			return nil, fail(object.RefOf(o).String(), errors.New(msg))
		}
	}
	isNamespaced := BuiltinNamespaced(objs)
	if r.opts.IsNamespaced != nil {
		isNamespaced = withCRDFallback(r.opts.IsNamespaced, objs)
	}
	if err := SetDefaultNamespace(objs, app.Config.Namespace, isNamespaced); err != nil {
		return nil, fail("", err)
	}
	if o := namespacedClusterObject(objs, isNamespaced); o != nil {
		return nil, fail(object.RefOf(o).String(), fmt.Errorf("metadata.namespace %q is set on cluster-scoped kind %s: remove it (a cluster-scoped object is never confined to a namespace)", o.GetNamespace(), o.GroupVersionKind().GroupKind()))
	}
	if dup := findDuplicate(objs); dup != nil {
		return nil, fail(object.RefOf(dup).String(), fmt.Errorf("duplicate object %s (same group, kind, namespace and name)", dup.GroupVersionKind().GroupKind()))
	}
	for _, o := range objs {
		r.opts.Owner.SetLabels(o, app.Name)
	}
	sortObjects(objs)
	return objs, nil
}
