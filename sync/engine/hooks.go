package engine

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// hookMemory remembers, per app, the render whose hooks ran, so that hooks run once
// per new desired state (a new digest) and not on every resync or drift correction.
// It lives in memory: after a restart the hooks of the current render run once more
// (Helm hooks are expected to be idempotent).
type hookMemory struct {
	mu   sync.Mutex
	runs map[string]hookRun
}

type hookRun struct {
	digest    string
	pre, post bool
}

func (m *hookMemory) ran(app, digest string, phase render.HookPhase) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[app]
	if !ok || r.digest != digest {
		return false
	}
	if phase == render.HookPre {
		return r.pre
	}
	return r.post
}

func (m *hookMemory) done(app, digest string, phase render.HookPhase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = map[string]hookRun{}
	}
	r := m.runs[app]
	if r.digest != digest {
		r = hookRun{digest: digest}
	}
	if phase == render.HookPre {
		r.pre = true
	} else {
		r.post = true
	}
	m.runs[app] = r
}

// hooksOf splits hooks (sorted by phase and weight) into pre and post.
func hooksOf(hooks []render.Hook) (pre, post []render.Hook) {
	for _, h := range hooks {
		if h.Phase == render.HookPre {
			pre = append(pre, h)
		} else {
			post = append(post, h)
		}
	}
	return pre, post
}

func hookObjects(hooks []render.Hook) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(hooks))
	for i, h := range hooks {
		out[i] = h.Object
	}
	return out
}

// namespacesOf returns the Namespace objects among objs: pre hooks need their
// namespace, so the app's Namespaces are applied before them.
func namespacesOf(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetAPIVersion() == "v1" && o.GetKind() == "Namespace" {
			out = append(out, o)
		}
	}
	return out
}

// runHooks applies namespaces, then each hook in order, waiting for each; the first
// failure stops the phase.
func (e *Engine) runHooks(ctx context.Context, app *repo.App, namespaces []*unstructured.Unstructured, hooks []render.Hook) error {
	if e.cfg.Hooks == nil {
		return errors.New("this engine cannot run Helm hooks (no HookRunner)")
	}
	timeout := app.Config.HealthTimeout.Duration
	for _, ns := range namespaces {
		if err := e.cfg.Hooks.RunHook(ctx, app.Name, ns, nil, timeout); err != nil {
			return err
		}
	}
	for _, h := range hooks {
		if err := e.cfg.Hooks.RunHook(ctx, app.Name, h.Object, h.DeletePolicies, timeout); err != nil {
			return err
		}
		e.cfg.Logger.Info("hook ran", "app", app.Name, "phase", h.Phase, "template", h.Template)
	}
	return nil
}

// hasHelmApp reports whether an app of spec renders a Helm chart.
func hasHelmApp(spec *repo.ClusterSpec) bool {
	for _, a := range spec.Apps {
		if a.Config.Helm != nil {
			return true
		}
	}
	return false
}
