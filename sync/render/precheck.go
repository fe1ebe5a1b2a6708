package render

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	kustypes "sigs.k8s.io/kustomize/api/types"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// maxKustomizationDepth bounds how deep kustomizations may nest.
const maxKustomizationDepth = 32

// precheck walks the kustomization tree of an app before kustomize runs and
// refuses what Outpost never builds, with errors naming the kustomization file
// and field:
//   - any reference that is not a local relative path (https://, git::, gh:,
//     ssh://, absolute paths): kustomize would fetch URLs over HTTP or exec git;
//   - any local reference that leaves the repository root lexically (../..);
//     symlinks that leave it are refused by the secure FS when read;
//   - helmCharts, helmChartInflationGenerator and helmGlobals (Helm is an exec).
//
// Exec and Go plugins (generators/transformers/validators that are not builtin)
// are refused by kustomize itself: builds run with plugins disabled.
type precheck struct {
	fsys    *guardedFS
	root    string
	visited map[string]bool
	openapi bool // some kustomization sets openapi: the build must reset the schema
	// virtual are the absolute paths of files that exist only in the build's
	// in-memory layer (a Helm app's chart.rendered.yaml).
	virtual map[string]bool
}

func (p *precheck) dir(dir string, depth int) error {
	if p.visited[dir] {
		return nil
	}
	p.visited[dir] = true
	kfile := findKustomization(p.fsys, dir)
	if kfile == "" {
		return nil
	}
	if depth > maxKustomizationDepth {
		return &repo.Error{File: p.fsys.rel(kfile), Msg: fmt.Sprintf("kustomizations nest deeper than %d levels", maxKustomizationDepth)}
	}
	data, err := p.fsys.ReadFile(kfile)
	if err != nil {
		return err
	}
	// Decode exactly as kustomize does, so the check sees what the build sees.
	var k kustypes.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return &repo.Error{File: p.fsys.rel(kfile), Msg: err.Error()}
	}
	k.FixKustomization()
	if len(k.OpenAPI) > 0 {
		p.openapi = true
	}
	if err := p.refs(kfile, &k); err != nil {
		return err
	}
	return p.subdirs(dir, &k, depth)
}

// subdirs descends into the directories a kustomization builds on, including
// generator, transformer and validator directories (kustomizations themselves).
func (p *precheck) subdirs(dir string, k *kustypes.Kustomization, depth int) error {
	//lint:ignore SA1019 kustomize v0.21 still builds the deprecated field, so the precheck must check it too
	lists := [][]string{k.Resources, k.Bases, k.Components,
		pathsOnly(k.Generators), pathsOnly(k.Transformers), pathsOnly(k.Validators)}
	for _, list := range lists {
		for _, r := range list {
			sub := filepath.Join(dir, filepath.FromSlash(r))
			if p.fsys.IsDir(sub) {
				if err := p.dir(sub, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ref is one path-valued field of a kustomization.
type ref struct {
	field string
	path  string
}

func (p *precheck) refs(kfile string, k *kustypes.Kustomization) error {
	file := p.fsys.rel(kfile)
	switch {
	case len(k.HelmCharts) > 0:
		return &repo.Error{File: file, Field: "helmCharts", Msg: "Helm charts are not supported (rendering never runs helm or other programs)"}
	case len(k.HelmChartInflationGenerator) > 0:
		return &repo.Error{File: file, Field: "helmChartInflationGenerator", Msg: "Helm charts are not supported (rendering never runs helm or other programs)"}
	case k.HelmGlobals != nil:
		return &repo.Error{File: file, Field: "helmGlobals", Msg: "Helm charts are not supported (rendering never runs helm or other programs)"}
	}
	for _, r := range kustomizationRefs(k) {
		if err := p.checkRef(kfile, r); err != nil {
			return err
		}
	}
	return nil
}

// checkRef allows only a relative path that, joined to the kustomization's
// directory, names a file or directory inside the repository: kustomize treats
// whatever it cannot load locally as something to fetch (HTTP) or clone (git exec,
// with arguments taken from the reference), so nothing else may reach it.
func (p *precheck) checkRef(kfile string, r ref) error {
	file := p.fsys.rel(kfile)
	fail := func(format string, args ...any) error {
		return &repo.Error{File: file, Field: r.field, Msg: fmt.Sprintf("%q ", r.path) + fmt.Sprintf(format, args...)}
	}
	if filepath.IsAbs(r.path) || strings.HasPrefix(r.path, "/") || strings.HasPrefix(r.path, `\`) {
		return fail("is an absolute path: paths must be relative to the kustomization")
	}
	if why := remoteRef(r.path); why != "" || !kustomize.IsLocalRelativePath(r.path) || strings.ContainsAny(r.path, "@?:") {
		if why == "" {
			why = "it contains '@', '?' or ':'"
		}
		return fail("is not a local relative path (%s): remote bases and URLs are not allowed", why)
	}
	target := filepath.Join(filepath.Dir(kfile), filepath.FromSlash(r.path))
	if rel, err := filepath.Rel(p.root, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fail("leads outside the repository root")
	}
	if !p.fsys.Exists(target) && !p.virtual[target] {
		// The secure FS says "does not exist" for a symlink leading outside the root
		// too: its read error says which.
		var ce *securefs.ConstraintError
		if _, err := p.fsys.FileSystem.ReadFile(target); errors.As(err, &ce) {
			return err
		}
		return fail("not found in the repository (kustomize would try to fetch it)")
	}
	return nil
}

// remoteRef says why kustomize (v0.21: internal/git.NewRepoSpecFromURL for bases,
// FileLoader.Load for files) could treat ref as something to fetch or clone, or ""
// when it cannot. The rules are a superset of kustomize's: any scheme ("x://"),
// its forced-git and GitHub shorthands ("git::", "gh:"), a user ("user@host"), an
// SCP-style host ("host:path", ':' before the first '/'), a query ("?ref=") and a
// first segment "github.com".
func remoteRef(ref string) string {
	lower := strings.ToLower(ref)
	first, _, _ := strings.Cut(lower, "/")
	switch {
	case strings.Contains(lower, "://"):
		return "a URL"
	case strings.HasPrefix(lower, "git::") || strings.HasPrefix(lower, "gh:"):
		return "a git shorthand"
	case strings.Contains(ref, "@"):
		return "a user@host reference"
	case strings.Contains(first, ":"):
		return "a host:path reference"
	case strings.Contains(ref, "?"):
		return "a query"
	case first == "github.com" || strings.HasPrefix(first, "github.com:"):
		return "a GitHub repository"
	}
	return ""
}

// refuseRemoteRefs checks every reference of the kustomization file rel (its
// content data) with remoteRef: the build's own layer, independent of the precheck.
func refuseRemoteRefs(rel string, data []byte) error {
	var k kustypes.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return &repo.Error{File: rel, Msg: err.Error()}
	}
	k.FixKustomization()
	for _, r := range kustomizationRefs(&k) {
		if why := remoteRef(r.path); why != "" {
			return &repo.Error{File: rel, Field: r.field, Msg: fmt.Sprintf("%q is %s: rendering never fetches remote bases or runs git", r.path, why)}
		}
	}
	return nil
}

// kustomizationRefs lists every field of k that names a file or directory.
func kustomizationRefs(k *kustypes.Kustomization) []ref {
	var refs []ref
	add := func(field string, paths ...string) {
		for i, p := range paths {
			if p != "" {
				refs = append(refs, ref{field: fmt.Sprintf("%s[%d]", field, i), path: p})
			}
		}
	}
	add("resources", k.Resources...)
	//lint:ignore SA1019 kustomize v0.21 still builds the deprecated field, so the precheck must check it too
	add("bases", k.Bases...)
	add("components", k.Components...)
	add("crds", k.Crds...)
	add("configurations", k.Configurations...)
	add("generators", pathsOnly(k.Generators)...)
	add("transformers", pathsOnly(k.Transformers)...)
	add("validators", pathsOnly(k.Validators)...)
	//lint:ignore SA1019 kustomize v0.21 still builds the deprecated field, so the precheck must check it too
	for i, psm := range k.PatchesStrategicMerge {
		if s := string(psm); !isInline(s) {
			refs = append(refs, ref{field: fmt.Sprintf("patchesStrategicMerge[%d]", i), path: s})
		}
	}
	for i, pt := range k.Patches {
		add(fmt.Sprintf("patches[%d].path", i), pt.Path)
	}
	//lint:ignore SA1019 kustomize v0.21 still builds the deprecated field, so the precheck must check it too
	for i, pt := range k.PatchesJson6902 {
		add(fmt.Sprintf("patchesJson6902[%d].path", i), pt.Path)
	}
	for i, r := range k.Replacements {
		add(fmt.Sprintf("replacements[%d].path", i), r.Path)
	}
	if p := k.OpenAPI["path"]; p != "" {
		refs = append(refs, ref{field: "openapi.path", path: p})
	}
	for i, g := range k.ConfigMapGenerator {
		refs = append(refs, kvRefs(fmt.Sprintf("configMapGenerator[%d]", i), g.KvPairSources)...)
	}
	for i, g := range k.SecretGenerator {
		refs = append(refs, kvRefs(fmt.Sprintf("secretGenerator[%d]", i), g.KvPairSources)...)
	}
	return refs
}

// kvRefs lists the files of a generator: files ([key=]path), envs and env.
func kvRefs(field string, kv kustypes.KvPairSources) []ref {
	var refs []ref
	for i, f := range kv.FileSources {
		if _, path, ok := strings.Cut(f, "="); ok {
			f = path
		}
		refs = append(refs, ref{field: fmt.Sprintf("%s.files[%d]", field, i), path: f})
	}
	for i, e := range kv.EnvSources {
		refs = append(refs, ref{field: fmt.Sprintf("%s.envs[%d]", field, i), path: e})
	}
	if kv.EnvSource != "" {
		refs = append(refs, ref{field: field + ".env", path: kv.EnvSource})
	}
	return refs
}

// pathsOnly keeps the entries of generators/transformers/validators that are
// paths; inline YAML configs are left to kustomize's builtin-only plugin loader.
func pathsOnly(entries []string) []string {
	var out []string
	for _, e := range entries {
		if !isInline(e) {
			out = append(out, e)
		}
	}
	return out
}

// isInline tells inline YAML (a patch or plugin config) from a path.
func isInline(s string) bool {
	return strings.Contains(s, "\n") || strings.Contains(s, ": ")
}
