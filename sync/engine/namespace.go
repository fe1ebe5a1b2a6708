package engine

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

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
func (e *Engine) withAppNamespace(ctx context.Context, app *repo.App, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	name := app.Config.Namespace
	if name == "" || len(e.cfg.Namespaces) > 0 {
		return objs, nil
	}
	for _, o := range objs {
		if gvk := o.GroupVersionKind(); gvk.Group == "" && gvk.Kind == "Namespace" && o.GetName() == name {
			return objs, nil
		}
	}
	live, err := e.cfg.Health.Get(ctx, health.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: name})
	switch {
	case apierrors.IsNotFound(err) || err == nil && live == nil:
		if !app.Config.CreateNamespace {
			return nil, &MissingNamespaceError{Namespace: name, App: app.Name}
		}
	case err != nil:
		return nil, fmt.Errorf("read Namespace %s of app %s: %w", name, app.Name, err)
	case live.GetLabels()[render.LabelApp] != app.Name:
		return objs, nil
	}
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(map[string]string{render.LabelManagedBy: render.ManagedByValue, render.LabelApp: app.Name})
	return append([]*unstructured.Unstructured{ns}, objs...), nil
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
