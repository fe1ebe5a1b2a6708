package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartv2util "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/konfig"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// ChartFetcher fetches the archive (.tgz) of a remote chart; *chart.Fetcher is one.
type ChartFetcher interface {
	Fetch(ctx context.Context, ref chart.Ref) ([]byte, error)
}

// Helm annotations read from rendered objects.
const (
	helmHook             = "helm.sh/hook"
	helmHookWeight       = "helm.sh/hook-weight"
	helmHookDeletePolicy = "helm.sh/hook-delete-policy"
)

// HookPhase says when a chart hook is applied.
type HookPhase string

const (
	// HookPre hooks (pre-install, pre-upgrade) are applied, and waited for, before
	// the app's objects.
	HookPre HookPhase = "pre"
	// HookPost hooks (post-install, post-upgrade, and test hooks with includeTests)
	// are applied, and waited for, after the app is healthy.
	HookPost HookPhase = "post"
)

// Hook delete policies (helm.sh/hook-delete-policy).
const (
	// HookBeforeCreation deletes the previous hook object before applying it again
	// (Helm's default when no policy is given).
	HookBeforeCreation = "before-hook-creation"
	// HookSucceeded deletes the hook object once it succeeded.
	HookSucceeded = "hook-succeeded"
	// HookFailed deletes the hook object when it failed.
	HookFailed = "hook-failed"
)

// Hook is one hook object of a chart. Hooks are not in the app's inventory: they are
// never pruned and never reported as drift.
type Hook struct {
	// Phase says when the hook runs.
	Phase HookPhase `json:"phase"`
	// Weight orders hooks within a phase, lowest first (helm.sh/hook-weight).
	Weight int `json:"weight"`
	// DeletePolicies are the hook's delete policies (default before-hook-creation).
	DeletePolicies []string `json:"deletePolicies"`
	// Template is the chart template the hook came from.
	Template string `json:"template"`
	// Object is the hook object, labelled like the app's objects.
	Object *unstructured.Unstructured `json:"object"`
}

// helmRender collects the sources of a Helm app's render.
type helmRender struct {
	sources []string
}

// renderHelm renders an app whose app.yaml has a helm block: the chart's templates,
// post-processed by the app's kustomization when the app folder has one (see
// postProcess), then the CRDs of crds/ and the common checks (finish). The chart is
// rendered twice and the two outputs compared (compareOutputs).
func (r *Renderer) renderHelm(ctx context.Context, cluster *repo.ClusterSpec, app *repo.App) (*Result, error) {
	fail := func(obj string, err error) error {
		return newError(r.root, cluster.Name, app.Name, obj, err)
	}
	appFile := app.Path + "/" + repo.AppFile
	reserved := app.Path + "/" + ChartResource
	if _, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(reserved))); err == nil {
		return nil, fail("", &repo.Error{File: reserved, Msg: fmt.Sprintf("the name %s is reserved in a Helm app's folder: it names the chart's rendered objects, which Outpost offers to the app's kustomization in memory; rename or remove the file", ChartResource)})
	}
	kfile := kustomizationIn(r.root, app.Path)
	root, err := os.OpenRoot(r.root)
	if err != nil {
		return nil, fail("", err)
	}
	defer root.Close()
	sub := newSubstituter(Vars(cluster, app), app.Config.Substitute, appFile)
	hr := &helmRender{}
	c, err := r.loadChart(ctx, root, sub, app, hr)
	if err != nil {
		return nil, fail("", err)
	}
	vals, err := r.helmValues(root, sub, cluster, app, hr)
	if err != nil {
		return nil, fail("", err)
	}
	first, second, err := r.runEngine(ctx, c, vals, app)
	if err != nil {
		return nil, fail("", err)
	}
	out, sources, err := r.chartOutput(ctx, c, first, kfile, sub, app, fail)
	if err != nil {
		return nil, err
	}
	if kfile == "" {
		// Sources even when absent: adding a kustomization (or the reserved file)
		// changes the render.
		for _, n := range konfig.RecognizedKustomizationFileNames() {
			sources = append(sources, app.Path+"/"+n)
		}
		sources = append(sources, reserved)
	}
	hr.sources = append(hr.sources, sources...)
	if !maps.Equal(first, second) {
		again, _, err := r.chartOutput(ctx, c, second, kfile, sub, app, fail)
		if err != nil {
			return nil, err
		}
		if obj, err := compareOutputs(c.Name(), out, again); err != nil {
			return nil, fail(obj, err)
		}
	}
	all := slices.Clone(out.objects)
	for _, hk := range out.hooks {
		all = append(all, hk.Object)
	}
	sum, err := digest(all)
	if err != nil {
		return nil, fail("", err)
	}
	slices.Sort(hr.sources)
	return &Result{
		Cluster: cluster.Name, App: app.Name, Version: app.Version, Namespace: app.Config.Namespace,
		Objects: out.objects, Hooks: out.hooks, Sources: slices.Compact(hr.sources), Digest: sum,
	}, nil
}

// chartOutput is one render of a chart, finished: the app's objects and its hooks.
type chartOutput struct {
	// objects are in apply order.
	objects []*unstructured.Unstructured
	// templates names the chart template (or crds/ file) of each object that came
	// from the chart; an object the app's kustomization added has none.
	templates map[*unstructured.Unstructured]string
	// hooks are sorted by phase and weight.
	hooks []Hook
}

// chartOutput turns the templates' output (manifests) into the app's objects and
// hooks: split, post-processed by the app's kustomization kfile (when not ""), the
// CRDs of crds/ added, checked and finished. It returns the files the
// post-processing read.
func (r *Renderer) chartOutput(ctx context.Context, c *chartv2.Chart, manifests map[string]string, kfile string, sub *substituter, app *repo.App, fail func(string, error) error) (*chartOutput, []string, error) {
	h := app.Config.Helm
	appFile := app.Path + "/" + repo.AppFile
	out := &chartOutput{templates: map[*unstructured.Unstructured]string{}}
	if err := splitManifests(manifests, h, out); err != nil {
		return nil, nil, fail("", err)
	}
	var sources []string
	if kfile != "" {
		var err error
		if sources, err = r.postProcess(ctx, out, kfile, sub, app, fail); err != nil {
			return nil, nil, err
		}
	}
	if !h.SkipCRDs {
		if err := chartCRDs(c, out); err != nil {
			return nil, nil, fail("", err)
		}
	}
	if len(out.objects) > MaxObjects {
		return nil, nil, fail("", fmt.Errorf("renders %d objects, more than the limit of %d", len(out.objects), MaxObjects))
	}
	if len(out.objects) == 0 && !app.Config.AllowEmpty {
		return nil, nil, fail("", fmt.Errorf("renders no objects; set allowEmpty: true in %s to allow an empty app (it prunes everything)", appFile))
	}
	objs, err := r.finish(out.objects, app, fail)
	if err != nil {
		return nil, nil, err
	}
	out.objects = objs
	hookObjs := make([]*unstructured.Unstructured, len(out.hooks))
	for i := range out.hooks {
		hookObjs[i] = out.hooks[i].Object
	}
	if _, err := r.finish(hookObjs, app, fail); err != nil {
		return nil, nil, err
	}
	sortHooks(out.hooks)
	return out, sources, nil
}

// kustomizationIn returns the repo-relative kustomization file in dir, or "".
func kustomizationIn(root, dir string) string {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := os.Lstat(root + "/" + dir + "/" + n); err == nil && !fi.IsDir() {
			return dir + "/" + n
		}
	}
	return ""
}

// loadChart reads the chart in the repository or fetches the remote one.
func (r *Renderer) loadChart(ctx context.Context, root *os.Root, sub *substituter, app *repo.App, hr *helmRender) (*chartv2.Chart, error) {
	h := app.Config.Helm
	appFile := app.Path + "/" + repo.AppFile
	if !h.Remote() {
		c, read, err := chart.LoadDir(root, h.Path, r.opts.ChartLimits)
		if err != nil {
			return nil, &repo.Error{File: appFile, Field: "helm.path", Msg: err.Error(), Err: err}
		}
		if _, err := fs.Stat(root.FS(), h.Path+"/.helmignore"); err == nil {
			read = append(read, h.Path+"/.helmignore")
		}
		hr.sources = append(hr.sources, read...)
		return c, nil
	}
	version, err := sub.text(h.Version, "chart version")
	if err != nil {
		return nil, &repo.Error{File: appFile, Field: "helm.version", Msg: err.Error(), Err: err}
	}
	if err := repo.CheckChartVersion(version); err != nil {
		var ie *repo.InvalidError
		msg := err.Error()
		if errors.As(err, &ie) {
			msg = fmt.Sprintf("%q (from %q) %s", version, h.Version, ie.Reason)
		}
		return nil, &repo.Error{File: appFile, Field: "helm.version", Msg: msg, Err: err}
	}
	ref := chart.Ref{Repo: h.Repo, Chart: h.Chart, OCI: h.OCI, Version: version, Digest: h.Digest, Verify: h.Verify}
	if r.opts.Charts == nil {
		return nil, fmt.Errorf("chart %s: remote charts are not fetched here (only the agent fetches them)", ref)
	}
	data, err := r.opts.Charts.Fetch(ctx, ref)
	if err != nil {
		return nil, err
	}
	c, err := chart.LoadArchive(data, r.opts.ChartLimits)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ref, err)
	}
	if c.Metadata == nil || c.Metadata.Name != ref.Name() || strings.TrimPrefix(c.Metadata.Version, "v") != strings.TrimPrefix(version, "v") {
		got := "no Chart.yaml"
		if c.Metadata != nil {
			got = c.Metadata.Name + " " + c.Metadata.Version
		}
		return nil, fmt.Errorf("chart %s: the archive holds chart %s, not %s %s", ref, got, ref.Name(), version)
	}
	hr.sources = append(hr.sources, ref.String())
	return c, nil
}

// helmValues layers the values, lowest precedence first: the chart's values.yaml
// (by Helm), helm.valuesFiles in order, helm.values, and
// clusters/<cluster>/values/<app>.yaml when it exists. ${VAR} references are
// substituted in each before it is parsed.
func (r *Renderer) helmValues(root *os.Root, sub *substituter, cluster *repo.ClusterSpec, app *repo.App, hr *helmRender) (map[string]any, error) {
	h := app.Config.Helm
	appFile := app.Path + "/" + repo.AppFile
	vals := map[string]any{}
	layer := func(file, field, text string) error {
		text, err := withoutComments(text)
		var out string
		if err == nil {
			out, err = sub.text(text, "values")
		}
		if err == nil {
			err = repo.CheckYAMLExpansion([]byte(out))
		}
		var m map[string]any
		if err == nil {
			m, err = loader.LoadValues(strings.NewReader(out))
		}
		if err != nil {
			return &repo.Error{File: file, Field: field, Msg: err.Error(), Err: err}
		}
		vals = loader.MergeMaps(vals, m)
		return nil
	}
	fsys := root.FS()
	for i, f := range h.ValuesFiles {
		field := fmt.Sprintf("helm.valuesFiles[%d]", i)
		p, err := sub.text(f, "path")
		if err != nil {
			return nil, &repo.Error{File: appFile, Field: field, Msg: err.Error(), Err: err}
		}
		if err := checkValuesPath(p); err != nil {
			return nil, &repo.Error{File: appFile, Field: field, Msg: fmt.Sprintf("%q: %v", p, err)}
		}
		data, err := repo.ReadFile(fsys, p)
		if err != nil {
			return nil, &repo.Error{File: appFile, Field: field, Msg: err.Error(), Err: err}
		}
		hr.sources = append(hr.sources, p)
		if err := layer(p, "", string(data)); err != nil {
			return nil, err
		}
	}
	if h.Values != "" {
		if err := layer(appFile, "helm.values", h.Values); err != nil {
			return nil, err
		}
	}
	clusterValues := repo.ClustersDir + "/" + cluster.Name + "/" + repo.ClusterValuesDir + "/" + app.Name + ".yaml"
	// A source even when absent: adding the file changes the render.
	hr.sources = append(hr.sources, clusterValues)
	data, err := repo.ReadFile(fsys, clusterValues)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := layer(clusterValues, "", string(data)); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// checkValuesPath checks a substituted values file path.
func checkValuesPath(p string) error {
	switch {
	case p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`):
		return errors.New("must be a relative path inside the repository")
	case path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../"):
		return errors.New("must be a clean path inside the repository (no '.' or '..')")
	case path.Ext(p) != ".yaml" && path.Ext(p) != ".yml":
		return errors.New("must be a .yaml or .yml file")
	}
	return nil
}

// capabilities are the cluster's, from Options, over Helm's defaults.
func (r *Renderer) capabilities() (*common.Capabilities, error) {
	caps := common.DefaultCapabilities.Copy()
	if r.opts.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(r.opts.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("cluster Kubernetes version %q: %w", r.opts.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	if r.opts.APIVersions != nil {
		caps.APIVersions = slices.Clone(r.opts.APIVersions)
	}
	return caps, nil
}

// runEngine checks the chart, validates the values against the charts' schemas and
// renders the templates twice, returning both outputs: renderHelm compares what
// they make (compareOutputs) when they differ.
func (r *Renderer) runEngine(ctx context.Context, c *chartv2.Chart, vals map[string]any, app *repo.App) (first, second map[string]string, err error) {
	h := app.Config.Helm
	name := c.Name()
	caps, err := r.capabilities()
	if err != nil {
		return nil, nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if kv := c.Metadata.KubeVersion; kv != "" && !chartv2util.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, nil, fmt.Errorf("chart %s requires Kubernetes %s; the cluster runs %s", name, kv, caps.KubeVersion.String())
	}
	if err := checkDependencies(c); err != nil {
		return nil, nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if err := chartv2util.ProcessDependencies(c, vals); err != nil {
		return nil, nil, fmt.Errorf("chart %s: dependencies: %w", name, err)
	}
	release := h.ReleaseName
	if release == "" {
		release = app.Name
	}
	install := r.opts.Installed == nil || !r.opts.Installed(app.Name)
	opts := common.ReleaseOptions{Name: release, Namespace: app.Config.Namespace, Revision: 1, IsInstall: install, IsUpgrade: !install}
	top, err := chartutil.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, true)
	if err != nil {
		return nil, nil, fmt.Errorf("chart %s: values: %w", name, err)
	}
	values, _ := top["Values"].(common.Values)
	if err := validateSchemas(c, values); err != nil {
		return nil, nil, err
	}
	run := func() (map[string]string, error) { return engine.Engine{}.RenderWithContext(ctx, c, top) }
	if h.Lookup && r.opts.Lookup != nil {
		// One provider for both renders: it memoizes, so they see the same cluster.
		p := newLookupProvider(ctx, r.opts.Lookup, app.Name, app.Config.Namespace)
		if r.opts.LookupMaxList > 0 {
			p.maxList = r.opts.LookupMaxList
		}
		run = func() (map[string]string, error) { return engine.RenderWithClientProvider(c, top, p) }
	}
	if first, err = run(); err != nil {
		return nil, nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if second, err = run(); err != nil {
		return nil, nil, fmt.Errorf("chart %s: %w", name, err)
	}
	return first, second, nil
}

// checkDependencies refuses a chart whose Chart.yaml names a dependency missing
// from its charts/ directory (Outpost never runs `helm dependency build`).
func checkDependencies(c *chartv2.Chart) error {
	var missing []string
	for _, d := range c.Metadata.Dependencies {
		found := false
		for _, sub := range c.Dependencies() {
			if sub.Name() == d.Name {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dependencies %s are in Chart.yaml but not in charts/ (vendor them: helm dependency build)", strings.Join(missing, ", "))
	}
	return nil
}

// validateSchemas validates values against the values.schema.json of the chart and
// of every subchart with values. Unlike Helm, a schema's $ref may only point inside
// the schema: nothing is read from the agent's disk or the network.
func validateSchemas(c *chartv2.Chart, values map[string]any) error {
	if len(c.Schema) > 0 {
		if err := validateSchema(c.Schema, values); err != nil {
			return fmt.Errorf("chart %s: values do not match %svalues.schema.json: %w", c.Name(), chartDir(c), err)
		}
	}
	for _, sub := range c.Dependencies() {
		raw, ok := values[sub.Name()]
		if !ok || raw == nil {
			continue
		}
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("chart %s: values.%s: must be a mapping (the values of subchart %s), got %T", c.Name(), sub.Name(), sub.Name(), raw)
		}
		if err := validateSchemas(sub, m); err != nil {
			return err
		}
	}
	return nil
}

// chartDir is the subchart's directory inside the top chart, "" for the top chart.
func chartDir(c *chartv2.Chart) string {
	if c.IsRoot() {
		return ""
	}
	var parts []string
	for p := c; !p.IsRoot(); p = p.Parent() {
		parts = append([]string{"charts/" + p.Name()}, parts...)
	}
	return strings.Join(parts, "/") + "/"
}

// noLoader refuses every external $ref of a values schema.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref %q: schemas may only refer inside values.schema.json", url)
}

func validateSchema(schemaJSON []byte, values map[string]any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("schema validation panicked: %v", p)
		}
	}()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	comp := jsonschema.NewCompiler()
	comp.UseLoader(noLoader{})
	const url = "file:///values.schema.json"
	if err := comp.AddResource(url, doc); err != nil {
		return err
	}
	sch, err := comp.Compile(url)
	if err != nil {
		return err
	}
	// The validator wants JSON types: round-trip the values.
	j, err := sigsyaml.Marshal(values)
	if err != nil {
		return err
	}
	jj, err := sigsyaml.YAMLToJSON(j)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(jj))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return errors.New(schemaMessage(ve))
		}
		return err
	}
	return nil
}

// schemaMessage lists the leaf causes as "values.a.b: message".
func schemaMessage(ve *jsonschema.ValidationError) string {
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "values"
			for _, el := range e.InstanceLocation {
				loc += "." + el
			}
			msgs = append(msgs, loc+": "+strings.TrimPrefix(e.ErrorKind.LocalizedString(message.NewPrinter(language.English)), "jsonschema: "))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(msgs)
	return strings.Join(slices.Compact(msgs), "; ")
}

// splitManifests parses the rendered templates into objects and hooks, in template
// order. Partials (_*.tpl), NOTES.txt and empty documents are skipped; test hooks
// are skipped unless includeTests; delete and rollback hooks are not supported.
func splitManifests(manifests map[string]string, h *repo.HelmConfig, out *chartOutput) error {
	names := make([]string, 0, len(manifests))
	for n := range manifests {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(manifests[name]) == "" {
			continue
		}
		docs, err := parseDocs(name, manifests[name])
		if err != nil {
			return err
		}
		for _, u := range docs {
			hook, ok, err := hookOf(name, u, h.IncludeTests)
			switch {
			case err != nil:
				return err
			case ok && hook == nil: // a hook Outpost does not run
			case ok:
				out.hooks = append(out.hooks, *hook)
			default:
				out.objects = append(out.objects, u)
				out.templates[u] = name
			}
		}
	}
	return nil
}

// parseDocs parses the YAML documents of one rendered template or CRD file.
func parseDocs(name, text string) ([]*unstructured.Unstructured, error) {
	if err := repo.CheckYAMLExpansion([]byte(text)); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		j, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d is not valid YAML: %w", name, i+1, err)
		}
		if s := string(bytes.TrimSpace(j)); s == "null" || s == "" {
			continue
		}
		m, err := decodeJSON(j)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d is not a mapping: %w", name, i+1, err)
		}
		u := &unstructured.Unstructured{Object: m}
		if msg := checkIdentity(u); msg != "" {
			return nil, fmt.Errorf("%s: document %d: %s", name, i+1, msg)
		}
		out = append(out, u)
	}
}

// hookOf reads the helm.sh/hook annotations: ok false means an ordinary object; ok
// with a nil hook means a hook Outpost skips.
func hookOf(template string, u *unstructured.Unstructured, includeTests bool) (*Hook, bool, error) {
	ann := u.GetAnnotations()
	kinds, isHook := ann[helmHook]
	if !isHook {
		return nil, false, nil
	}
	var phase HookPhase
	for k := range strings.SplitSeq(kinds, ",") {
		switch strings.TrimSpace(k) {
		case "pre-install", "pre-upgrade":
			phase = HookPre
		case "post-install", "post-upgrade":
			if phase == "" {
				phase = HookPost
			}
		case "test", "test-success":
			if includeTests && phase == "" {
				phase = HookPost
			}
		}
	}
	if phase == "" {
		return nil, true, nil // test (without includeTests), delete and rollback hooks
	}
	hk := &Hook{Phase: phase, Template: template, Object: u}
	if w, ok := ann[helmHookWeight]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return nil, true, fmt.Errorf("%s: %s: annotation %s: %q is not an integer", template, object.RefOf(u), helmHookWeight, w)
		}
		hk.Weight = n
	}
	for p := range strings.SplitSeq(ann[helmHookDeletePolicy], ",") {
		switch p = strings.TrimSpace(p); p {
		case "":
		case HookBeforeCreation, HookSucceeded, HookFailed:
			hk.DeletePolicies = append(hk.DeletePolicies, p)
		default:
			return nil, true, fmt.Errorf("%s: %s: annotation %s: unknown policy %q", template, object.RefOf(u), helmHookDeletePolicy, p)
		}
	}
	if len(hk.DeletePolicies) == 0 {
		hk.DeletePolicies = []string{HookBeforeCreation}
	}
	return hk, true, nil
}

// sortHooks orders hooks by phase, weight, then kind, namespace and name.
func sortHooks(hooks []Hook) {
	sort.SliceStable(hooks, func(i, j int) bool {
		a, b := hooks[i], hooks[j]
		if a.Phase != b.Phase {
			return a.Phase == HookPre
		}
		if a.Weight != b.Weight {
			return a.Weight < b.Weight
		}
		return object.RefOf(a.Object).String() < object.RefOf(b.Object).String()
	})
}

// chartCRDs adds the CRDs of the crds/ directories of the chart and its enabled
// subcharts, annotated never to be pruned (object.PruneAnnotation).
//
// They never go through the app's kustomization, as Helm's post-renderers never see
// crds/ either: the kustomization cannot rename them or drop the annotation.
func chartCRDs(c *chartv2.Chart, out *chartOutput) error {
	for _, crd := range c.CRDObjects() {
		docs, err := parseDocs(crd.Filename, string(crd.File.Data))
		if err != nil {
			return err
		}
		for _, u := range docs {
			if u.GetKind() != "CustomResourceDefinition" {
				return fmt.Errorf("%s: %s: only CustomResourceDefinitions may be in crds/", crd.Filename, object.RefOf(u))
			}
			ann := u.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[object.PruneAnnotation] = object.PruneDisabled
			u.SetAnnotations(ann)
			out.objects = append(out.objects, u)
			out.templates[u] = crd.Filename
		}
	}
	return nil
}

// withoutComments returns the YAML documents of text with comments dropped, so that
// a ${VAR} in a comment of a values file is never substituted (as in manifests).
func withoutComments(text string) (string, error) {
	if !strings.Contains(text, "#") {
		return text, nil
	}
	if err := repo.CheckYAMLExpansion([]byte(text)); err != nil {
		return "", err
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("invalid YAML: %w", err)
		}
		dropComments(&doc)
		if err := enc.Encode(&doc); err != nil {
			return "", err
		}
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}
