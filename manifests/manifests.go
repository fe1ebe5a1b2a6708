package manifests

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/outpost-gitops/outpost/sync/render"
)

// Install targets: directories of Files that build to something users apply.
const (
	// Hub is the hub's install.
	Hub = "hub"
	// HubHA is the highly available hub: replicas on PostgreSQL and a remote repository.
	HubHA = "hub-ha"
	// AgentCluster is the agent with the cluster RBAC profile.
	AgentCluster = "agent/cluster"
	// AgentNamespaced is the agent with the namespaced RBAC profile (example namespaces).
	AgentNamespaced = "agent/namespaced"
	// HubSecrets and AgentSecrets are the example Secrets.
	HubSecrets   = "hub/example-secrets"
	AgentSecrets = "agent/example-secrets"
)

// Names of the installed objects, for code that refers to them.
const (
	// Namespace is the install namespace.
	Namespace = "outpost-system"
	// AgentName names the agent's ServiceAccount, DaemonSet, Role, RoleBinding and
	// ConfigMap (before kustomize's hash suffix).
	AgentName = "outpost-agent"
	// AgentContainer is the agent's container in the DaemonSet.
	AgentContainer = "agent"
	// HubName names the hub's ServiceAccount, Deployment and Service.
	HubName = "outpost-hub"
	// HubContainer is the hub's container in the Deployment.
	HubContainer = "hub"
	// TenantClusterRole is the ClusterRole of the namespaced profile.
	TenantClusterRole = "outpost-agent-tenant"
)

//go:embed images namespace hub hub-ha agent
var embedded embed.FS

// Files returns the manifests, rooted at this directory (paths like
// "agent/base/daemonset.yaml").
func Files() fs.FS { return embedded }

// Overlay returns Files with extra files added (path → content), e.g. a kustomization
// in "overlay/kustomization.yaml" that builds on "../agent/base".
func Overlay(extra map[string]string) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(embedded, p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy the embedded manifests: %w", err)
	}
	for p, content := range extra {
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("overlay file %q: not a valid relative path", p)
		}
		out[p] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	return out, nil
}

// Build runs kustomize on the kustomization in dir of fsys, as `kubectl apply -k`
// would (builtin plugins only, no file outside the kustomization's root), and returns
// the objects in kustomize's order.
func Build(fsys fs.FS, dir string) ([]*unstructured.Unstructured, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+p, data)
	})
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	defer render.LockKustomize()() // the process's one kustomize lock: kustomize keeps global state
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsRootOnly,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	m, err := k.Run(mem, path.Join("/", dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	objs := make([]*unstructured.Unstructured, 0, m.Size())
	for _, r := range m.Resources() {
		// Through JSON, so that numbers are int64 or float64 as everywhere in client-go.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// Find returns the object of objs with kind and name (a ConfigMap's generated hash
// suffix is ignored when name has none), or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	if kind == "ConfigMap" || kind == "Secret" {
		for _, o := range objs {
			if o.GetKind() == kind && strings.HasPrefix(o.GetName(), name+"-") && len(o.GetName()) == len(name)+11 {
				return o
			}
		}
	}
	return nil
}

// Pod is what the downward API tells a container about its pod.
type Pod struct {
	// Name and Namespace of the pod.
	Name, Namespace string
}

// ProcessSpec is how a container's process starts: its arguments (after the image's
// entrypoint) and its environment.
type ProcessSpec struct {
	// Image is the container's image.
	Image string
	// Command is the container's command (empty: the image's entrypoint).
	Command []string
	// Args are the container's args.
	Args []string
	// Env is the environment, envFrom ConfigMaps first, then env (which wins); values
	// from the downward API are resolved with the Pod, resource fields are left out.
	Env map[string]string
}

// Process resolves the container named container of the workload kind/name in objs
// (envFrom ConfigMaps are looked up in objs). It fails on what a process could not
// get: a missing ConfigMap, a Secret as environment (Outpost mounts Secrets as files).
func Process(objs []*unstructured.Unstructured, kind, name, container string, pod Pod) (*ProcessSpec, error) {
	w := Find(objs, kind, name)
	if w == nil {
		return nil, fmt.Errorf("no %s %s", kind, name)
	}
	var spec corev1.PodTemplateSpec
	tmpl, found, err := unstructured.NestedMap(w.Object, "spec", "template")
	if err != nil || !found {
		return nil, fmt.Errorf("%s %s: no spec.template", kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(tmpl, &spec, true); err != nil {
		return nil, fmt.Errorf("%s %s: pod template: %w", kind, name, err)
	}
	var c *corev1.Container
	for i := range spec.Spec.Containers {
		if spec.Spec.Containers[i].Name == container {
			c = &spec.Spec.Containers[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("%s %s: no container %q", kind, name, container)
	}
	p := &ProcessSpec{Image: c.Image, Command: c.Command, Args: c.Args, Env: map[string]string{}}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			return nil, fmt.Errorf("%s %s: container %s: envFrom other than a ConfigMap", kind, name, container)
		}
		cm := Find(objs, "ConfigMap", from.ConfigMapRef.Name)
		if cm == nil {
			return nil, fmt.Errorf("%s %s: container %s: envFrom ConfigMap %s is not in the build", kind, name, container, from.ConfigMapRef.Name)
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		for k, v := range data {
			p.Env[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		v, ok, err := envValue(e, pod)
		if err != nil {
			return nil, fmt.Errorf("%s %s: container %s: env %s: %w", kind, name, container, e.Name, err)
		}
		if ok {
			p.Env[e.Name] = v
		} else {
			delete(p.Env, e.Name)
		}
	}
	return p, nil
}

// envValue resolves one env entry; ok is false for values only a kubelet knows.
func envValue(e corev1.EnvVar, pod Pod) (string, bool, error) {
	if e.ValueFrom == nil {
		return e.Value, true, nil
	}
	switch {
	case e.ValueFrom.FieldRef != nil:
		switch e.ValueFrom.FieldRef.FieldPath {
		case "metadata.name":
			return pod.Name, true, nil
		case "metadata.namespace":
			return pod.Namespace, true, nil
		}
		return "", false, fmt.Errorf("field %s is not resolved", e.ValueFrom.FieldRef.FieldPath)
	case e.ValueFrom.ResourceFieldRef != nil:
		return "", false, nil
	case e.ValueFrom.SecretKeyRef != nil:
		return "", false, errors.New("a Secret as an environment variable: mount it as a file")
	}
	return "", false, errors.New("unsupported valueFrom")
}

// Images returns every container image (init containers included) of the workloads
// in objs, by "Kind/name/container".
func Images(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		tmpl, found, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		if !found {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			cs, _, _ := unstructured.NestedSlice(tmpl, field)
			for _, c := range cs {
				m, _ := c.(map[string]any)
				img, _ := m["image"].(string)
				n, _ := m["name"].(string)
				out[o.GetKind()+"/"+o.GetName()+"/"+n] = img
			}
		}
	}
	return out
}
