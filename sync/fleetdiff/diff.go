package fleetdiff

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/field"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/plan"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Action says what the change does to an object.
type Action string

// Object actions.
const (
	// Added objects exist only in the head render: the agent creates them.
	Added Action = "added"
	// Removed objects exist only in the base render: the agent prunes them (unless
	// the app disables prune).
	Removed Action = "removed"
	// Changed objects render differently.
	Changed Action = "changed"
)

// ObjectDiff is one object the change adds, removes or changes.
type ObjectDiff struct {
	// Object names the object.
	Object object.Ref `json:"object"`
	// Version is the API version it renders at (head's, or base's when removed).
	Version string `json:"version"`
	// Action is what the change does to it.
	Action Action `json:"action"`
	// Diff is a unified diff of its YAML, base to head; Secret values masked.
	Diff string `json:"diff"`
}

// IsCRD tells whether the object is a CustomResourceDefinition.
func (d ObjectDiff) IsCRD() bool {
	return d.Object.Group == "apiextensions.k8s.io" && d.Object.Kind == "CustomResourceDefinition"
}

// IsNamespace tells whether the object is a Namespace.
func (d ObjectDiff) IsNamespace() bool { return d.Object.Group == "" && d.Object.Kind == "Namespace" }

// AppDiff is the change to one app on one cluster.
type AppDiff struct {
	// App is the app's name.
	App string `json:"app"`
	// BaseVersion and HeadVersion are the app's versions in apps.yaml; empty when
	// the app is not deployed to the cluster on that side.
	BaseVersion string `json:"baseVersion,omitempty"`
	HeadVersion string `json:"headVersion,omitempty"`
	// Objects are the objects that differ: removals first, then CRDs, then the
	// others, each group by object.
	Objects []ObjectDiff `json:"objects"`
}

// ClusterDiff is the change to one cluster.
type ClusterDiff struct {
	// Cluster is the cluster's name.
	Cluster string `json:"cluster"`
	// Apps are the apps that change, by name.
	Apps []AppDiff `json:"apps"`
	// Live is what applying the head would really change on the running cluster
	// (a server-side dry-run), per app; only for clusters given a Planner.
	Live []LiveApp `json:"live,omitempty"`
}

// LiveApp is the server-side dry-run of one app's head render against a cluster.
type LiveApp struct {
	// App is the app's name.
	App string `json:"app"`
	// Objects are the objects the sync would create, update or delete, with the
	// fields it would change (including fields other managers set: they are what an
	// apply takes back), and those it would keep as they are although they differ
	// from the head (plan.ActionKeep: drift an app with drift: report keeps, or a
	// create-only object), with the fields that differ when known. Secret values are
	// masked.
	Objects []plan.Item `json:"objects,omitempty"`
	// Error is why the dry-run failed, if it did.
	Error string `json:"error,omitempty"`
}

// Planner previews the sync of an app's objects on one cluster, with the app's sync
// options (apply.OptionsFor its app.yaml: its drift policy decides which drift a sync
// keeps), without changing it; *apply.Syncer's Plan is one.
type Planner interface {
	Plan(ctx context.Context, app string, desired []*unstructured.Unstructured, opts apply.Options) (*plan.Plan, error)
}

// Error is a load or render failure of one side, located as precisely as known.
type Error struct {
	// Side is "head" or "base".
	Side string `json:"side"`
	// Cluster and App name where it happened; App is empty for a cluster's files.
	Cluster string `json:"cluster"`
	App     string `json:"app,omitempty"`
	// File and Line locate the cause in the repository, when known.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Object names the object, when the failure is about one.
	Object string `json:"object,omitempty"`
	// Message is the error.
	Message string `json:"message"`
}

// Counts sums a result up.
type Counts struct {
	Clusters int `json:"clusters"`
	Apps     int `json:"apps"`
	Added    int `json:"added"`
	Changed  int `json:"changed"`
	Removed  int `json:"removed"`
}

// Result is the change a head checkout makes relative to a base checkout.
type Result struct {
	// Base and Head name the two sides (revisions, or "working tree").
	Base string `json:"base"`
	Head string `json:"head"`
	// Clusters are the clusters that change, by name.
	Clusters []ClusterDiff `json:"clusters"`
	// Errors are the load and render failures; a head error makes the diff
	// incomplete (the CLI exits 2).
	Errors []Error `json:"errors,omitempty"`
	// Counts sums the clusters up.
	Counts Counts `json:"counts"`
	// Renders is how many renders ran, and Reused how many head renders were the base
	// render (same inputs).
	Renders int `json:"-"`
	Reused  int `json:"-"`
}

// HeadErrors tells whether the head side failed anywhere.
func (r *Result) HeadErrors() bool {
	return slices.ContainsFunc(r.Errors, func(e Error) bool { return e.Side == "head" })
}

// Changes tells whether the change alters a cluster: an object the repository diff
// adds, removes or changes, or a live object a sync would create, update or delete, or
// a live dry-run that failed. Objects a sync keeps (plan.ActionKeep) alter nothing.
func (r *Result) Changes() bool {
	for _, c := range r.Clusters {
		if len(c.Apps) > 0 {
			return true
		}
		for _, la := range c.Live {
			if la.Error != "" || slices.ContainsFunc(la.Objects, func(it plan.Item) bool { return it.Action != plan.ActionKeep || it.Error != "" }) {
				return true
			}
		}
	}
	return false
}

// Has tells whether any object diff satisfies pred.
func (r *Result) Has(pred func(ObjectDiff) bool) bool {
	for _, c := range r.Clusters {
		for _, a := range c.Apps {
			if slices.ContainsFunc(a.Objects, pred) {
				return true
			}
		}
	}
	return false
}

// Options configure Compute.
type Options struct {
	// BaseName and HeadName label the sides in the result. Default "base", "head".
	BaseName, HeadName string
	// Clusters, when set, limits the diff to these clusters.
	Clusters []string
	// Selector, when set, limits the diff to clusters whose labels (on either side)
	// it matches.
	Selector labels.Selector
	// MaskKey keys the masks of Secret values; default 32 random bytes per call.
	MaskKey []byte
	// Context is the number of unchanged lines around each change in a diff.
	// Default 3.
	Context int
	// Live maps a cluster name to a Planner for that cluster: its head renders are
	// also dry-run against it (ClusterDiff.Live).
	Live map[string]Planner
	// Charts fetches the remote charts of Helm apps (helm.repo, helm.oci) for both
	// sides. Nil: such an app is a render error naming the chart. A fetch failure is
	// that app's render error; the other apps are still diffed.
	Charts render.ChartFetcher
}

func (o Options) withDefaults() (Options, error) {
	if o.BaseName == "" {
		o.BaseName = "base"
	}
	if o.HeadName == "" {
		o.HeadName = "head"
	}
	if len(o.MaskKey) == 0 {
		o.MaskKey = make([]byte, 32)
		if _, err := rand.Read(o.MaskKey); err != nil {
			return o, fmt.Errorf("mask key: %w", err)
		}
	}
	if o.Context <= 0 {
		o.Context = 3
	}
	return o, nil
}

// Compute diffs the repository checkout at head against the one at base. base may be
// "" (no base: everything is added).
func Compute(ctx context.Context, base, head string, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &Result{Base: opts.BaseName, Head: opts.HeadName}
	bside, err := openSide(ctx, "base", base, opts)
	if err != nil {
		return nil, err
	}
	hside, err := openSide(ctx, "head", head, opts)
	if err != nil {
		return nil, err
	}
	res.Errors = append(res.Errors, bside.errors...)
	res.Errors = append(res.Errors, hside.errors...)
	same := &sameFiles{base: base, head: head, equal: map[string]bool{}}
	for _, name := range unionKeys(bside.clusters, hside.clusters) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bc, hc := bside.clusters[name], hside.clusters[name]
		if !opts.selects(name, bc, hc) || hside.failed[name] {
			continue // a head that does not load shows nothing as removed
		}
		cd := diffCluster(ctx, res, bside, hside, bc, hc, same, opts)
		if len(cd.Apps) > 0 || len(cd.Live) > 0 {
			cd.Cluster = name
			res.Clusters = append(res.Clusters, cd)
		}
	}
	res.Counts = count(res.Clusters)
	return res, nil
}

func (o Options) selects(name string, specs ...*repo.ClusterSpec) bool {
	if len(o.Clusters) > 0 && !slices.Contains(o.Clusters, name) {
		return false
	}
	if o.Selector == nil {
		return true
	}
	for _, s := range specs {
		if s != nil && o.Selector.Matches(labels.Set(s.Labels)) {
			return true
		}
	}
	return false
}

// side is one checkout: its clusters, loaded, and a renderer.
type side struct {
	name     string
	root     string
	r        *render.Renderer
	clusters map[string]*repo.ClusterSpec
	failed   map[string]bool // clusters whose files do not load
	errors   []Error
}

func openSide(ctx context.Context, name, root string, opts Options) (*side, error) {
	s := &side{name: name, root: root, clusters: map[string]*repo.ClusterSpec{}, failed: map[string]bool{}}
	if root == "" {
		return s, nil
	}
	r, err := render.New(root, render.Options{Charts: opts.Charts})
	if err != nil {
		return nil, fmt.Errorf("%s checkout %s: %w", name, root, err)
	}
	s.r = r
	names, err := repo.ListClustersDir(root)
	if err != nil {
		s.errors = append(s.errors, located(name, "", "", err))
		return s, nil
	}
	for _, c := range names {
		if len(opts.Clusters) > 0 && !slices.Contains(opts.Clusters, c) {
			continue
		}
		spec, err := repo.LoadDir(ctx, root, c)
		if err != nil {
			s.errors = append(s.errors, located(name, c, "", err))
			s.failed[c] = true
			continue
		}
		s.clusters[c] = spec
	}
	return s, nil
}

// located turns a load or render error into an Error with its file, line and object:
// a render error naming an object is located at that object's manifest in the app's
// folder of root, when one matches.
func locatedIn(root, sideName, cluster, app string, err error) Error {
	e := located(sideName, cluster, app, err)
	if e.File == "" && e.Object != "" && app != "" {
		e.File, e.Line = locateObject(root, app, e.Object)
	}
	return e
}

// located turns a load or render error into an Error with its file, line and object.
func located(sideName, cluster, app string, err error) Error {
	e := Error{Side: sideName, Cluster: cluster, App: app, Message: err.Error()}
	var re *repo.Error
	if errors.As(err, &re) {
		e.File, e.Line = re.File, re.Line
	}
	var rend *render.Error
	if errors.As(err, &rend) {
		e.Object = rend.Object
	}
	return e
}

func diffCluster(ctx context.Context, res *Result, b, h *side, bc, hc *repo.ClusterSpec, same *sameFiles, opts Options) ClusterDiff {
	var cd ClusterDiff
	bapps, happs := appsOf(bc), appsOf(hc)
	for _, name := range unionKeys(bapps, happs) {
		ba, ha := bapps[name], happs[name]
		var bres, hres *render.Result
		var failed bool
		if ba != nil {
			r, err := b.r.Render(ctx, bc, ba)
			res.Renders++
			if err != nil {
				res.Errors = append(res.Errors, locatedIn(b.root, "base", bc.Name, name, err))
			}
			bres = r
		}
		if ha != nil {
			if bres != nil && sameInputs(same, bc, hc, ba, ha, bres.Sources) {
				hres = bres
				res.Reused++
			} else {
				r, err := h.r.Render(ctx, hc, ha)
				res.Renders++
				if err != nil {
					res.Errors = append(res.Errors, locatedIn(h.root, "head", hc.Name, name, err))
					failed = true
				}
				hres = r
			}
		}
		if failed {
			continue // an incomplete head render must not show as removals
		}
		if p := opts.Live[hc.Name]; p != nil && hres != nil { // hres: hc is set
			if la := live(ctx, p, ha, hres); len(la.Objects) > 0 || la.Error != "" {
				cd.Live = append(cd.Live, la)
			}
		}
		ad := AppDiff{App: name, Objects: diffObjects(bres, hres, opts)}
		if ba != nil {
			ad.BaseVersion = ba.Version
		}
		if ha != nil {
			ad.HeadVersion = ha.Version
		}
		if len(ad.Objects) > 0 {
			cd.Apps = append(cd.Apps, ad)
		}
	}
	return cd
}

// live previews the sync of an app's head render on a cluster, with the app's head
// options, and keeps what would not be left unchanged.
func live(ctx context.Context, p Planner, app *repo.App, r *render.Result) LiveApp {
	la := LiveApp{App: app.Name}
	pl, err := p.Plan(ctx, app.Name, r.Objects, apply.OptionsFor(app.Config))
	if err != nil {
		la.Error = err.Error()
	}
	if pl == nil {
		return la
	}
	for _, it := range pl.Items {
		if it.Action != plan.ActionUnchanged || it.Error != "" {
			la.Objects = append(la.Objects, it)
		}
	}
	return la
}

func appsOf(c *repo.ClusterSpec) map[string]*repo.App {
	out := map[string]*repo.App{}
	if c == nil {
		return out
	}
	for i := range c.Apps {
		out[c.Apps[i].Name] = &c.Apps[i]
	}
	return out
}

// sameInputs tells whether the head render of an app would read exactly what its base
// render read: the same source files, the same apps.yaml entry and app.yaml, the same
// cluster labels and variables.
func sameInputs(same *sameFiles, bc, hc *repo.ClusterSpec, ba, ha *repo.App, sources []string) bool {
	if !reflect.DeepEqual(ba, ha) || !maps.Equal(bc.Labels, hc.Labels) || !maps.Equal(bc.Vars, hc.Vars) {
		return false
	}
	for _, src := range sources {
		if !same.file(src) {
			return false
		}
	}
	return true
}

// sameFiles compares repository files between the two checkouts, each once: every
// cluster's render of an app reads the same files.
type sameFiles struct {
	base, head string
	equal      map[string]bool // by repository path
}

func (s *sameFiles) file(p string) bool {
	if eq, ok := s.equal[p]; ok {
		return eq
	}
	x, errx := os.ReadFile(filepath.Join(s.base, filepath.FromSlash(p)))
	y, erry := os.ReadFile(filepath.Join(s.head, filepath.FromSlash(p)))
	eq := errx == nil && erry == nil && bytes.Equal(x, y)
	s.equal[p] = eq
	return eq
}

// diffObjects pairs the objects of two renders (either may be nil) by identity.
func diffObjects(b, h *render.Result, opts Options) []ObjectDiff {
	bo, ho := index(b), index(h)
	var out []ObjectDiff
	for _, ref := range unionRefs(bo, ho) {
		x, y := bo[ref], ho[ref]
		bx, by := toYAML(x, opts.MaskKey), toYAML(y, opts.MaskKey)
		if x != nil && y != nil && bx == by {
			continue
		}
		d := ObjectDiff{Object: ref, Action: Changed}
		switch {
		case x == nil:
			d.Action, d.Version = Added, y.GroupVersionKind().Version
		case y == nil:
			d.Action, d.Version = Removed, x.GroupVersionKind().Version
		default:
			d.Version = y.GroupVersionKind().Version
		}
		d.Diff = unified(ref.String(), bx, by, opts.Context)
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b ObjectDiff) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return a.Object.Compare(b.Object)
	})
	return out
}

// rank orders removals first, then CRD changes, then the rest.
func rank(d ObjectDiff) int {
	switch {
	case d.Action == Removed:
		return 0
	case d.IsCRD():
		return 1
	}
	return 2
}

func index(r *render.Result) map[object.Ref]*unstructured.Unstructured {
	out := map[object.Ref]*unstructured.Unstructured{}
	if r == nil {
		return out
	}
	for _, o := range r.Objects {
		out[object.RefOf(o)] = o
	}
	return out
}

// toYAML renders an object as YAML with its Secret values masked; "" for nil.
func toYAML(u *unstructured.Unstructured, key []byte) string {
	if u == nil {
		return ""
	}
	ref := object.RefOf(u)
	obj := u.Object
	if ref.IsSecret() {
		obj = u.DeepCopy().Object
		for _, f := range []string{"data", "stringData"} {
			if !field.SecretValue(ref, field.Path{field.Field(f)}) {
				continue
			}
			if m, ok := obj[f].(map[string]any); ok {
				for k, v := range m {
					m[k] = plan.Mask(key, fmt.Sprint(v))
				}
			}
		}
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Sprintf("# cannot render %s as YAML: %v\n", ref, err)
	}
	return string(b)
}

func unified(name, a, b string, context int) string {
	from, to := "base/"+name, "head/"+name
	if a == "" {
		from = "/dev/null"
	}
	if b == "" {
		to = "/dev/null"
	}
	s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(a), B: lines(b), FromFile: from, ToFile: to, Context: context,
	})
	if err != nil {
		return fmt.Sprintf("# diff failed: %v\n", err)
	}
	return s
}

// lines splits s into lines that keep their "\n"; none for "".
func lines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

func count(cs []ClusterDiff) Counts {
	c := Counts{Clusters: len(cs)}
	for _, cd := range cs {
		c.Apps += len(cd.Apps)
		for _, a := range cd.Apps {
			for _, o := range a.Objects {
				switch o.Action {
				case Added:
					c.Added++
				case Removed:
					c.Removed++
				default:
					c.Changed++
				}
			}
		}
	}
	return c
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func unionRefs(a, b map[object.Ref]*unstructured.Unstructured) []object.Ref {
	refs := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			refs = append(refs, k)
		}
	}
	slices.SortFunc(refs, object.Ref.Compare)
	return refs
}
