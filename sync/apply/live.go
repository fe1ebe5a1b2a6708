package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

// LiveLister is the cluster view a sync compares its records with.
type LiveLister interface {
	// LiveVersions returns the resourceVersion of each object of entries that
	// exists and carries app's ownership labels. Objects missing from the map are
	// re-applied.
	LiveVersions(ctx context.Context, app string, entries []inventory.Entry) (map[object.Ref]string, error)
}

// listPageSize bounds the objects one LIST page returns.
const listPageSize = 500

// APILister is a LiveLister that asks the apiserver: one metadata-only LIST per
// kind and namespace, selected by the app's ownership labels.
type APILister struct {
	c        client.Client
	owner    object.Owner
	pageSize int64
}

// NewAPILister returns an APILister reading through c the objects owner's labels
// mark as an app's.
func NewAPILister(c client.Client, owner object.Owner) *APILister {
	return &APILister{c: c, owner: owner.WithDefaults(), pageSize: listPageSize}
}

type listKey struct {
	gk        schema.GroupKind
	namespace string
}

// LiveVersions implements LiveLister. A kind the apiserver does not serve (its CRD
// is gone) has no live objects.
func (l *APILister) LiveVersions(ctx context.Context, app string, entries []inventory.Entry) (map[object.Ref]string, error) {
	versions := map[listKey]string{}
	for _, e := range entries {
		k := listKey{gk: schema.GroupKind{Group: e.Group, Kind: e.Kind}, namespace: e.Namespace}
		if _, ok := versions[k]; !ok {
			versions[k] = e.Version
		}
	}
	live := make(map[object.Ref]string, len(entries))
	for k, version := range versions {
		if err := l.list(ctx, app, k, version, live); err != nil {
			return nil, err
		}
	}
	return live, nil
}

func (l *APILister) list(ctx context.Context, app string, k listKey, version string, into map[object.Ref]string) error {
	err := listMetadata(ctx, l.c, k, version, l.pageSize, l.owner.Labels(app), func(item *metav1.PartialObjectMetadata) {
		ref := object.Ref{Group: k.gk.Group, Kind: k.gk.Kind, Namespace: item.Namespace, Name: item.Name}
		into[ref] = item.ResourceVersion
	})
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		return nil // the kind is not served (its CRD is gone): no live objects
	}
	if err != nil {
		return fmt.Errorf("list %s in namespace %q for app %q: %w", k.gk, k.namespace, app, err)
	}
	return nil
}

// listMetadata calls fn for each object of kind k.gk in k.namespace (every
// namespace when empty) that matches labels, reading metadata only, page by page.
func listMetadata(ctx context.Context, c client.Client, k listKey, version string, pageSize int64, labels map[string]string,
	fn func(*metav1.PartialObjectMetadata)) error {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: k.gk.Group, Version: version, Kind: k.gk.Kind + "List"})
	opts := []client.ListOption{client.Limit(pageSize)}
	if len(labels) > 0 {
		opts = append(opts, client.MatchingLabels(labels))
	}
	if k.namespace != "" {
		opts = append(opts, client.InNamespace(k.namespace))
	}
	for page := ""; ; {
		err := c.List(ctx, list, append(opts, client.Continue(page))...)
		if err != nil {
			return err
		}
		for i := range list.Items {
			fn(&list.Items[i])
		}
		if list.Continue == "" {
			return nil
		}
		page = list.Continue
	}
}
