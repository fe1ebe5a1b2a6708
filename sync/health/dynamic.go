package health

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/outpost-gitops/outpost/sync/object"
)

// DynamicGetter reads objects with a dynamic client, mapping kinds to resources with a
// discovery-backed RESTMapper. It implements Getter.
type DynamicGetter struct {
	client dynamic.Interface
	mapper meta.ResettableRESTMapper
}

// NewDynamicGetter returns a DynamicGetter for a client and a RESTMapper.
func NewDynamicGetter(client dynamic.Interface, mapper meta.ResettableRESTMapper) *DynamicGetter {
	return &DynamicGetter{client: client, mapper: mapper}
}

// NewDynamicGetterForConfig builds the dynamic client and a cached discovery RESTMapper
// from a REST config.
func NewDynamicGetterForConfig(cfg *rest.Config) (*DynamicGetter, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %s: %w", cfg.Host, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client for %s: %w", cfg.Host, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return NewDynamicGetter(client, mapper), nil
}

// Get reads one object at the version the cluster prefers for its kind (health does
// not depend on the version: kstatus reads conditions and generations, the same at
// every served version). A kind the mapper does not know is looked up again once,
// after resetting the mapper (a CRD may just have been created).
func (g *DynamicGetter) Get(ctx context.Context, ref object.Ref) (*unstructured.Unstructured, error) {
	mapping, err := g.mapper.RESTMapping(ref.GroupKind())
	if meta.IsNoMatchError(err) {
		g.mapper.Reset()
		mapping, err = g.mapper.RESTMapping(ref.GroupKind())
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: map kind: %w", ref, err)
	}
	var ri dynamic.ResourceInterface = g.client.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = g.client.Resource(mapping.Resource).Namespace(ref.Namespace)
	}
	obj, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	return obj, nil
}
