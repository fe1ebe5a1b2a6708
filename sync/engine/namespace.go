package engine

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// namespaceClaims makes one app the creator of a missing namespace that several apps
// name: apps syncing at once would otherwise all add it, and all but the first to
// apply fail on the ownership check.
type namespaceClaims struct {
	mu      sync.Mutex
	locks   map[string]*sync.Mutex // per namespace, held from the decision to create it until the creator's apply returns
	creator map[string]string      // namespace -> the app that created it in this process
}

// lock locks namespace ns and returns its unlock.
func (c *namespaceClaims) lock(ns string) func() {
	c.mu.Lock()
	if c.locks == nil {
		c.locks, c.creator = map[string]*sync.Mutex{}, map[string]string{}
	}
	m := c.locks[ns]
	if m == nil {
		m = &sync.Mutex{}
		c.locks[ns] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (c *namespaceClaims) createdBy(ns string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creator[ns]
}

func (c *namespaceClaims) setCreator(ns, app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creator[ns] = app
}

// withAppNamespace returns objs with the Namespace of app.yaml's namespace added, first,
// when the app creates it or created it before:
//
//   - the render holds that Namespace, or app.yaml sets no namespace, or the engine is
//     limited to Config.Namespaces (such an agent may not write Namespaces): objs as
//     they are;
//   - the Namespace does not exist: added when createNamespace (the default), so it is
//     created and enters the app's inventory; with createNamespace: false, a
//     *MissingNamespaceError;
//   - it exists and carries the app's ownership label (the app created it): added, so
//     it stays in the inventory and is pruned with the app;
//   - it exists and is not the app's (created by a person, another tool or another
//     app): objs as they are, so the app never adopts, changes or prunes it.
//
// When the app creates the Namespace, release (always safe to call, more than once)
// must be called once its apply returned: until then other apps that name the same
// namespace wait, and then find it theirs to use, not to create.
func (e *Engine) withAppNamespace(ctx context.Context, app *repo.App, objs []*unstructured.Unstructured) (_ []*unstructured.Unstructured, release func(), _ error) {
	release = func() {}
	name := app.Config.Namespace
	if name == "" || len(e.cfg.Namespaces) > 0 {
		return objs, release, nil
	}
	for _, o := range objs {
		if object.RefOf(o) == (object.Ref{Kind: "Namespace", Name: name}) {
			return objs, release, nil
		}
	}
	unlock := e.ns.lock(name)
	var once sync.Once
	release = func() { once.Do(unlock) }
	live, err := e.cfg.Health.Get(ctx, object.Ref{Kind: "Namespace", Name: name})
	switch {
	case apierrors.IsNotFound(err) || err == nil && live == nil:
		if c := e.ns.createdBy(name); c != "" && c != app.Name {
			release() // created by another app of this engine, not yet in the cache read
			return objs, release, nil
		}
		if !app.Config.CreateNamespace {
			release()
			return nil, release, &MissingNamespaceError{Namespace: name, App: app.Name}
		}
		e.ns.setCreator(name, app.Name) // held locked until the apply returns
	case err != nil:
		release()
		return nil, release, fmt.Errorf("read Namespace %s of app %s: %w", name, app.Name, err)
	case e.cfg.Owner.AppOf(live.GetLabels()) != app.Name:
		release()
		return objs, release, nil
	default:
		release() // the app's already: nothing to wait for
	}
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	e.cfg.Owner.SetLabels(ns, app.Name)
	return append([]*unstructured.Unstructured{ns}, objs...), release, nil
}

// MissingNamespaceError is an app whose namespace does not exist while its app.yaml
// says createNamespace: false.
type MissingNamespaceError struct {
	// Namespace is app.yaml's namespace.
	Namespace string
	// App is the app's name.
	App string
}

func (e *MissingNamespaceError) Error() string {
	return fmt.Sprintf("namespace %q does not exist and %s/%s/%s sets createNamespace: false: create it (kubectl create namespace %s), add a Namespace manifest to %s/%s/, or set createNamespace: true",
		e.Namespace, repo.AppsDir, e.App, repo.AppFile, e.Namespace, repo.AppsDir, e.App)
}
