package render

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// ClusterReader gives the lookup function of Helm apps with helm.lookup: true the
// cluster's objects. Render restricts what it is asked (read-only; namespaced kinds
// only in the app's namespace) and memoizes its answers per render (lookupProvider);
// the reader itself need not. A Helm engine.ClientProvider is one; NewClusterReader
// returns the agent's.
type ClusterReader interface {
	// GetClientFor returns the client of apiVersion's kind and whether the kind is
	// namespaced.
	GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error)
}

// NewClusterReader returns a ClusterReader backed by a dynamic client and a
// (discovery-backed) RESTMapper.
func NewClusterReader(dyn dynamic.Interface, mapper meta.RESTMapper) ClusterReader {
	return mapperReader{dyn: dyn, mapper: mapper}
}

type mapperReader struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func (m mapperReader) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, false, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	mapping, err := m.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
	if err != nil {
		return nil, false, fmt.Errorf("kind %s of %s is not served by the cluster: %w", kind, apiVersion, err)
	}
	return m.dyn.Resource(mapping.Resource), mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// errLookupReadOnly is the error of every write through a lookup client.
var errLookupReadOnly = errors.New("lookups are read-only")

// lookupProvider is the engine.ClientProvider of one render of one app: it serves
// get and list only, namespaced kinds only in the app's namespace (cluster-scoped
// kinds anywhere), and memoizes every answer, so both renders of the chart (see
// runEngine) see the same cluster even when it changes between them.
type lookupProvider struct {
	ctx       context.Context
	reader    ClusterReader
	app       string
	namespace string // the app's namespace; "" allows cluster-scoped kinds only
	maxList   int    // the most objects a list lookup returns (Options.LookupMaxList)

	mu      sync.Mutex
	memo    map[lookupKey]lookupAnswer
	clients map[[2]string]kindClient // by apiVersion and kind
}

// kindClient is the memoized answer of the reader's GetClientFor.
type kindClient struct {
	client     dynamic.NamespaceableResourceInterface
	namespaced bool
	err        error
}

// lookupKey is one question a template asked; name "" is a list.
type lookupKey struct {
	apiVersion, kind, namespace, name string
}

// lookupAnswer is the memoized answer: an object, a list or an error.
type lookupAnswer struct {
	obj  *unstructured.Unstructured
	list *unstructured.UnstructuredList
	err  error
}

// newLookupProvider returns the lookup provider of one render of app, whose
// namespace is namespace. The engine calls its clients with a background context;
// they use ctx, the render's, instead.
func newLookupProvider(ctx context.Context, reader ClusterReader, app, namespace string) *lookupProvider {
	return &lookupProvider{ctx: ctx, reader: reader, app: app, namespace: namespace, maxList: defaultLookupMaxList,
		memo: map[lookupKey]lookupAnswer{}, clients: map[[2]string]kindClient{}}
}

// defaultLookupMaxList is Options.LookupMaxList's default; lookupPageSize the page of a
// list lookup.
const (
	defaultLookupMaxList = 5000
	lookupPageSize       = 500
)

var _ engine.ClientProvider = (*lookupProvider)(nil)

// GetClientFor implements engine.ClientProvider.
func (p *lookupProvider) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	p.mu.Lock()
	kc, ok := p.clients[[2]string{apiVersion, kind}]
	if !ok {
		kc.client, kc.namespaced, kc.err = p.reader.GetClientFor(apiVersion, kind)
		p.clients[[2]string{apiVersion, kind}] = kc
	}
	p.mu.Unlock()
	if kc.err != nil {
		return nil, false, fmt.Errorf("app %s: lookup of %s %s: %w", p.app, apiVersion, kind, kc.err)
	}
	return &lookupClient{p: p, inner: kc.client, apiVersion: apiVersion, kind: kind, namespaced: kc.namespaced}, kc.namespaced, nil
}

// ask answers k from the memo, or by calling read once.
func (p *lookupProvider) ask(k lookupKey, read func() lookupAnswer) lookupAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.memo[k]
	if !ok {
		a = read()
		p.memo[k] = a
	}
	// Copies: a template may change what it got (set, unset).
	if a.obj != nil {
		a.obj = a.obj.DeepCopy()
	}
	if a.list != nil {
		a.list = a.list.DeepCopy()
	}
	return a
}

// lookupClient is the client of one kind, and of one namespace once Namespace was
// called; only Get and List are served.
type lookupClient struct {
	p                *lookupProvider
	inner            dynamic.NamespaceableResourceInterface
	apiVersion, kind string
	namespaced       bool
	namespace        string // "" until Namespace
}

// Namespace implements dynamic.NamespaceableResourceInterface.
func (c *lookupClient) Namespace(ns string) dynamic.ResourceInterface {
	cc := *c
	cc.namespace = ns
	return &cc
}

// where names the namespace of a request, for errors.
func (c *lookupClient) where() string {
	if !c.namespaced {
		return "(cluster-scoped)"
	}
	if c.namespace == "" {
		return "in all namespaces"
	}
	return "in namespace " + c.namespace
}

// allowed refuses a read outside the app's namespace.
func (c *lookupClient) allowed(subresources []string) error {
	switch {
	case len(subresources) > 0:
		return fmt.Errorf("app %s: lookup of %s %s %s: subresources are not served", c.p.app, c.apiVersion, c.kind, c.where())
	case !c.namespaced:
		return nil
	case c.p.namespace == "":
		return fmt.Errorf("app %s: lookup of %s %s %s refused: the app has no namespace in app.yaml, so its chart may look up cluster-scoped objects only", c.p.app, c.apiVersion, c.kind, c.where())
	case c.namespace != c.p.namespace:
		return fmt.Errorf("app %s: lookup of %s %s %s refused: a chart may look up namespaced objects only in the app's namespace %s (.Release.Namespace)", c.p.app, c.apiVersion, c.kind, c.where(), c.p.namespace)
	}
	return nil
}

// wrap names the app, kind and namespace in a read's error; a wrapped NotFound is
// still one (Helm's lookup turns it into an empty answer).
func (c *lookupClient) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("app %s: lookup of %s %s %s: %w", c.p.app, c.apiVersion, c.kind, c.where(), err)
}

// refuse is the error of a write.
func (c *lookupClient) refuse(verb string) error {
	return fmt.Errorf("app %s: %s of %s %s %s refused: %w", c.p.app, verb, c.apiVersion, c.kind, c.where(), errLookupReadOnly)
}

// Get implements dynamic.ResourceInterface: memoized, in the allowed scope.
func (c *lookupClient) Get(_ context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error) {
	if err := c.allowed(subresources); err != nil {
		return nil, err
	}
	a := c.p.ask(lookupKey{apiVersion: c.apiVersion, kind: c.kind, namespace: c.namespace, name: name}, func() lookupAnswer {
		var ri dynamic.ResourceInterface = c.inner
		if c.namespaced {
			ri = c.inner.Namespace(c.namespace)
		}
		obj, err := ri.Get(c.p.ctx, name, opts)
		return lookupAnswer{obj: obj, err: c.wrap(err)}
	})
	return a.obj, a.err
}

// List implements dynamic.ResourceInterface: memoized, in the allowed scope.
func (c *lookupClient) List(_ context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	if err := c.allowed(nil); err != nil {
		return nil, err
	}
	a := c.p.ask(lookupKey{apiVersion: c.apiVersion, kind: c.kind, namespace: c.namespace}, func() lookupAnswer {
		var ri dynamic.ResourceInterface = c.inner
		if c.namespaced {
			ri = c.inner.Namespace(c.namespace)
		}
		list, err := c.listBounded(ri, opts)
		return lookupAnswer{list: list, err: c.wrap(err)}
	})
	return a.list, a.err
}

// listBounded reads a list in pages, failing once it holds more than the provider's
// maxList objects.
func (c *lookupClient) listBounded(ri dynamic.ResourceInterface, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	limit := c.p.maxList
	opts.Limit = int64(min(lookupPageSize, limit))
	opts.Continue = ""
	var out *unstructured.UnstructuredList
	for {
		page, err := ri.List(c.p.ctx, opts)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = page
		} else {
			out.Items = append(out.Items, page.Items...)
			out.SetResourceVersion(page.GetResourceVersion())
		}
		if len(out.Items) > limit {
			return nil, fmt.Errorf("lists more than %d objects, the most a list lookup may return: look up objects by name, or narrow the list", limit)
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			out.SetContinue("")
			out.SetRemainingItemCount(nil)
			return out, nil
		}
	}
}

// Watch implements dynamic.ResourceInterface; it is refused (a render reads once).
func (c *lookupClient) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return nil, fmt.Errorf("app %s: watch of %s %s %s refused: lookups get and list only", c.p.app, c.apiVersion, c.kind, c.where())
}

// Create implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error) {
	return nil, c.refuse("create")
}

// Update implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) Update(context.Context, *unstructured.Unstructured, metav1.UpdateOptions, ...string) (*unstructured.Unstructured, error) {
	return nil, c.refuse("update")
}

// UpdateStatus implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) UpdateStatus(context.Context, *unstructured.Unstructured, metav1.UpdateOptions) (*unstructured.Unstructured, error) {
	return nil, c.refuse("status update")
}

// Delete implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) Delete(context.Context, string, metav1.DeleteOptions, ...string) error {
	return c.refuse("delete")
}

// DeleteCollection implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return c.refuse("delete")
}

// Patch implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*unstructured.Unstructured, error) {
	return nil, c.refuse("patch")
}

// Apply implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) Apply(context.Context, string, *unstructured.Unstructured, metav1.ApplyOptions, ...string) (*unstructured.Unstructured, error) {
	return nil, c.refuse("apply")
}

// ApplyStatus implements dynamic.ResourceInterface; it is refused.
func (c *lookupClient) ApplyStatus(context.Context, string, *unstructured.Unstructured, metav1.ApplyOptions) (*unstructured.Unstructured, error) {
	return nil, c.refuse("status apply")
}
