package agent

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpost-gitops/outpost/agent/driftwatch"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

// cacheLister answers apply's resourceVersion look-ups from the drift watch's caches,
// so an idle cycle sends no request at all; kinds not watched yet go to fallback.
type cacheLister struct {
	watch    *driftwatch.Watcher
	fallback apply.LiveLister
}

func (l cacheLister) LiveVersions(ctx context.Context, app string, entries []inventory.Entry) (map[object.Ref]string, error) {
	out := make(map[object.Ref]string, len(entries))
	var rest []inventory.Entry
	for _, e := range entries {
		obj, ok, err := l.watch.Get(e.Ref)
		switch {
		case err != nil:
			rest = append(rest, e)
		case ok:
			out[e.Ref] = obj.GetResourceVersion()
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	more, err := l.fallback.LiveVersions(ctx, app, rest)
	if err != nil {
		return nil, err
	}
	for k, v := range more {
		out[k] = v
	}
	return out, nil
}

// cacheGetter reads live objects for health checks from the drift watch's caches,
// falling back to the API for kinds not watched yet.
type cacheGetter struct {
	watch    *driftwatch.Watcher
	fallback health.Getter
}

func (g cacheGetter) Get(ctx context.Context, ref object.Ref) (*unstructured.Unstructured, error) {
	obj, ok, err := g.watch.Get(ref)
	switch {
	case err != nil:
		return g.fallback.Get(ctx, ref)
	case !ok:
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: ref.Group, Resource: ref.Kind}, ref.Name)
	}
	return obj, nil
}
