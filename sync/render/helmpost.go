package render

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"path/filepath"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kustypes "sigs.k8s.io/kustomize/api/types"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// ChartResource is the file, in a Helm app's folder, that holds the chart's rendered
// objects for the app's kustomization, which lists it under resources. It exists
// only in the build's in-memory file system: the repository is never written, and a
// real file of that name in a Helm app's folder is an error.
const ChartResource = "chart.rendered.yaml"

// chartTemplateAnnotation marks each object of ChartResource, while the app's
// kustomization runs, with the template it came from. The marked objects the build
// returns are the chart's: they are never substituted, and errors name their
// template. The annotation is removed from every object after the build.
const chartTemplateAnnotation = "outpost.dev/chart-template"

// postProcess runs the app's kustomization kfile (repo-relative) over the
// templates' objects of out, offered to it as ChartResource in the app folder, and
// replaces them with what it builds. The kustomization goes through the precheck
// like a kustomize app's. The objects that come from ChartResource are never
// substituted (a chart's output is full of shell scripts), with whatever the
// kustomization patched into them; the objects the kustomization adds are
// substituted as app.yaml's substitute says, as in a kustomize app. Hooks and the
// CRDs of crds/ are not offered to it. It returns the files the build read.
func (r *Renderer) postProcess(ctx context.Context, out *chartOutput, kfile string, sub *substituter, app *repo.App, fail func(string, error) error) ([]string, error) {
	gfs := newGuardedFS(r.secure, r.root)
	dir := filepath.Join(r.root, filepath.FromSlash(app.Path))
	if err := checkListsChart(gfs, filepath.Join(r.root, filepath.FromSlash(kfile))); err != nil {
		return nil, fail("", err)
	}
	data, err := chartResourceYAML(out)
	if err != nil {
		return nil, fail("", err)
	}
	m, _, err := r.build(ctx, gfs, dir, map[string][]byte{filepath.Join(dir, ChartResource): data})
	if err != nil {
		return nil, fail("", err)
	}
	if m.Size() > MaxObjects {
		return nil, fail("", fmt.Errorf("renders %d objects, more than the limit of %d", m.Size(), MaxObjects))
	}
	out.objects = make([]*unstructured.Unstructured, 0, m.Size())
	clear(out.templates)
	for _, res := range m.Resources() {
		if err := ctx.Err(); err != nil {
			return nil, fail("", err)
		}
		template, fromChart := res.GetAnnotations()[chartTemplateAnnotation]
		var obj map[string]any
		if fromChart {
			obj, err = plainObject(res)
		} else {
			obj, err = sub.object(res)
		}
		if err != nil {
			return nil, fail(object.Ref{Group: res.GetGvk().Group, Kind: res.GetKind(), Namespace: res.GetNamespace(), Name: res.GetName()}.String(), err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if fromChart {
			unmark(u)
			out.templates[u] = template
		}
		out.objects = append(out.objects, u)
	}
	return gfs.sources(), nil
}

// checkListsChart refuses a Helm app's kustomization (abs path kpath) that does not
// list ChartResource under resources.
func checkListsChart(gfs *guardedFS, kpath string) error {
	rel := gfs.rel(kpath)
	data, err := gfs.ReadFile(kpath)
	if err != nil {
		return err
	}
	var k kustypes.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return &repo.Error{File: rel, Msg: err.Error()}
	}
	k.FixKustomization()
	for _, res := range k.Resources {
		if path.Clean(res) == ChartResource {
			return nil
		}
	}
	return &repo.Error{File: rel, Field: "resources", Msg: fmt.Sprintf("does not list %s: in a Helm app the kustomization post-processes the chart's rendered objects, which Outpost offers as %s in the app folder; add \"- %s\" under resources", ChartResource, ChartResource, ChartResource)}
}

// chartResourceYAML is the content of ChartResource: the templates' objects of out,
// each marked with its template (chartTemplateAnnotation).
func chartResourceYAML(out *chartOutput) ([]byte, error) {
	var b bytes.Buffer
	for _, u := range out.objects {
		c := u.DeepCopy()
		if err := unstructured.SetNestedField(c.Object, out.templates[u], "metadata", "annotations", chartTemplateAnnotation); err != nil {
			return nil, fmt.Errorf("%s: %s: metadata.annotations: %w", out.templates[u], object.RefOf(u), err)
		}
		y, err := sigsyaml.Marshal(c.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", out.templates[u], object.RefOf(u), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// unmark removes chartTemplateAnnotation, and metadata.annotations when it held
// nothing else.
func unmark(u *unstructured.Unstructured) {
	unstructured.RemoveNestedField(u.Object, "metadata", "annotations", chartTemplateAnnotation)
	if ann, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "annotations"); found {
		if m, ok := ann.(map[string]any); ok && len(m) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		}
	}
}

// compareOutputs compares two renders of a chart, object by object (by group, kind,
// namespace and name): they must make the same objects and hooks, and the same
// content, except the content of an object annotated create-only
// (object.ApplyAnnotation) in the first render, which apply creates once and never
// updates. Such an object's labels and annotations must still be the same (they are
// its digest, see digestForm). Hooks cannot be exempted: they run once per digest.
// The error names the template; the object at fault is returned with it.
func compareOutputs(chartName string, a, b *chartOutput) (string, error) {
	type entry struct {
		obj      *unstructured.Unstructured
		template string
		hook     bool
	}
	index := func(o *chartOutput) ([]object.Ref, map[object.Ref]entry) {
		var refs []object.Ref
		m := map[object.Ref]entry{}
		add := func(e entry) {
			ref := object.RefOf(e.obj)
			if _, dup := m[ref]; !dup {
				refs = append(refs, ref)
				m[ref] = e
			}
		}
		for _, u := range o.objects {
			add(entry{obj: u, template: o.templates[u]})
		}
		for _, hk := range o.hooks {
			add(entry{obj: hk.Object, template: hk.Template, hook: true})
		}
		return refs, m
	}
	differs := func(e entry, format string, args ...any) error {
		const funcs = "(randAlphaNum, uuidv4, now, genCA…?)"
		what := fmt.Sprintf("chart %s: template %s renders differently each time %s", chartName, e.template, funcs)
		if e.template == "" {
			what = fmt.Sprintf("chart %s renders differently each time %s and the app's kustomization carries the difference into this object", chartName, funcs)
		}
		return fmt.Errorf("%s: %s", what, fmt.Sprintf(format, args...))
	}
	refsA, ia := index(a)
	refsB, ib := index(b)
	for _, ref := range refsA {
		ea := ia[ref]
		eb, ok := ib[ref]
		switch {
		case !ok:
			return ref.String(), differs(ea, "the object is in one render and not in the other (its name changes?); names must not change between renders")
		case reflect.DeepEqual(ea.obj.Object, eb.obj.Object):
		case ea.hook:
			return ref.String(), differs(ea, "the hook would run again on every sync; set the value in helm.values (annotation %s: %s does not apply to hooks)", object.ApplyAnnotation, object.ApplyCreateOnly)
		case !object.IsCreateOnly(ea.obj):
			return ref.String(), differs(ea, "the object would change on every sync; set the value in helm.values, or annotate the object %s: %s to create it once and never update it", object.ApplyAnnotation, object.ApplyCreateOnly)
		case !reflect.DeepEqual(digestForm(ea.obj), digestForm(eb.obj)):
			return ref.String(), differs(ea, "the object is annotated %s: %s, which exempts its content only: its labels and annotations must render the same each time", object.ApplyAnnotation, object.ApplyCreateOnly)
		}
	}
	for _, ref := range refsB {
		if _, ok := ia[ref]; !ok {
			return ref.String(), differs(ib[ref], "the object is in one render and not in the other (its name changes?); names must not change between renders")
		}
	}
	return "", nil
}
