package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-gitops/outpost/agent"
	"github.com/outpost-gitops/outpost/cmd/outpost/cli"
	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/internal/flagenv"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // the apply engine's controller-runtime client logs nothing useful here
	testenv.RunMain(m, testenv.Options{Name: "manifests"}, func(c *testenv.Cluster) { env = c })
}

// build builds dir of Files, failing the test on error.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Build(Files(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// buildOverlay builds dir of Files plus extra files.
func buildOverlay(t *testing.T, extra map[string]string, dir string) []*unstructured.Unstructured {
	t.Helper()
	fsys, err := Overlay(extra)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Build(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// typed converts o to its Go type, failing on unknown fields.
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

// mustFind returns the object kind/name of objs.
func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := Find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s in the build", kind, name)
	}
	return o
}

// podSpec returns the pod spec of the workload kind/name of objs.
func podSpec(t *testing.T, objs []*unstructured.Unstructured, kind, name string) corev1.PodSpec {
	t.Helper()
	o := mustFind(t, objs, kind, name)
	switch kind {
	case "DaemonSet":
		return typed[appsv1.DaemonSet](t, o).Spec.Template.Spec
	case "Deployment":
		return typed[appsv1.Deployment](t, o).Spec.Template.Spec
	}
	t.Fatalf("%s is not a workload kind", kind)
	return corev1.PodSpec{}
}

// container returns the named container of spec.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// agentPod is the pod the tests pretend the agent runs in.
func agentPod(namespace string) Pod {
	return Pod{Name: "outpost-agent-x7k2p", Namespace: namespace}
}

// commandLine checks the container's command line with the real CLI: the
// subcommand, its flags and values, and its environment applied as the command
// applies it. Every OUTPOST_* variable must be a flag of the command (a typo would
// otherwise be ignored). It returns the resolved process.
func commandLine(t *testing.T, objs []*unstructured.Unstructured, kind, name, ctr, sub string, pod Pod) *ProcessSpec {
	t.Helper()
	p, err := Process(objs, kind, name, ctr, pod)
	if err != nil {
		t.Fatal(err)
	}
	args := cliArgs(t, name, p)
	if len(args) == 0 || args[0] != sub {
		t.Fatalf("%s: command %q args %q, want `outpost %s`", name, p.Command, p.Args, sub)
	}
	root := cli.NewRootCommand(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != sub {
		t.Fatalf("outpost %q: command %v, %v", args, cmd.Name(), err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("outpost %q: %v", args, err)
	}
	if err := flagenv.Apply(cmd.Flags(), p.lookup); err != nil {
		t.Fatalf("%s environment: %v", name, err)
	}
	known := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { known[flagenv.EnvName(f.Name)] = true })
	for k := range p.Env {
		if strings.HasPrefix(k, "OUTPOST_") && !known[k] {
			t.Errorf("%s: environment variable %s is no flag of `outpost %s`: a typo?", name, k, sub)
		}
	}
	return p
}

// agentBinary is the agent-only binary of the image (Dockerfile); it is `outpost
// agent` without the rest of the CLI: the same flags and variables (agent.Command).
const agentBinary = "/usr/local/bin/outpost-agent"

// cliArgs returns a container's command line as arguments of the outpost CLI: the
// image's entrypoint (outpost) takes the container's args, outpost-agent is `outpost
// agent`.
func cliArgs(t *testing.T, name string, p *ProcessSpec) []string {
	t.Helper()
	switch {
	case len(p.Command) == 0:
		return p.Args
	case len(p.Command) == 1 && p.Command[0] == agentBinary:
		return append([]string{"agent"}, p.Args...)
	}
	t.Fatalf("%s: command %q is neither the image's entrypoint nor %s", name, p.Command, agentBinary)
	return nil
}

func (p *ProcessSpec) lookup(k string) (string, bool) { v, ok := p.Env[k]; return v, ok }

// agentConfig is the agent configuration the DaemonSet of objs gives a pod (see
// commandLine).
func agentConfig(t *testing.T, objs []*unstructured.Unstructured, pod Pod) agent.Config {
	t.Helper()
	p := commandLine(t, objs, "DaemonSet", AgentName, AgentContainer, "agent", pod)
	cfg := agent.DefaultConfig()
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.String("log-level", "info", "") // the CLI's own flag
	if err := fs.Parse(cliArgs(t, AgentName, p)[1:]); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Apply(fs, p.lookup); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hubConfig is the hub configuration the Deployment of objs gives its pod.
func hubConfig(t *testing.T, objs []*unstructured.Unstructured) hub.Config {
	t.Helper()
	p := commandLine(t, objs, "Deployment", HubName, HubContainer, "hub", Pod{Name: "outpost-hub-6d4f9-x2x7k", Namespace: Namespace})
	cfg := hub.DefaultConfig()
	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.String("log-level", "info", "") // the CLI's own flag
	if err := fs.Parse(p.Args[1:]); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Apply(fs, p.lookup); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// secretFile says whether file is a key of a Secret volume mounted in c: it returns
// the Secret's name and key.
func secretFile(spec corev1.PodSpec, c corev1.Container, file string) (secret, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		if path.Dir(file) != path.Clean(m.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			key := path.Base(file)
			if len(v.Secret.Items) == 0 {
				return v.Secret.SecretName, key, true
			}
			for _, it := range v.Secret.Items {
				if it.Path == key {
					return v.Secret.SecretName, it.Key, true
				}
			}
		}
	}
	return "", "", false
}

// emptyDirMount says whether dir is an emptyDir mounted in c.
func emptyDirMount(spec corev1.PodSpec, c corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		// dir is the mount or a directory the program creates inside it (the agent
		// creates its cache directory itself, mode 0700: an emptyDir is 0777).
		if (path.Clean(m.MountPath) != path.Clean(dir) && path.Dir(path.Clean(dir)) != path.Clean(m.MountPath)) || m.ReadOnly {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.EmptyDir != nil {
				return true
			}
		}
	}
	return false
}

// port returns the container port named name.
func port(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// listenPort is the port of a --listen address.
func listenPort(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return p
}

// tempFile writes a file holding content and returns its path.
func tempFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// namespacesOf returns the sorted namespaces of the RoleBindings of objs that bind
// the ClusterRole role.
func namespacesOf(objs []*unstructured.Unstructured, role string) []string {
	var out []string
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" {
			continue
		}
		if name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name"); name == role {
			out = append(out, o.GetNamespace())
		}
	}
	slices.Sort(out)
	return out
}

// applier applies objects as the admin, with server-side apply and strict field
// validation (a misspelt field is an error, not a warning).
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier() *applier {
	rc := env.RESTConfig()
	return &applier{
		dyn:    dynamic.NewForConfigOrDie(rc),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(rc))),
	}
}

// resource returns the client of o's resource.
func (a *applier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured) error {
	ri, err := a.resource(o)
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	force := true
	_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager: "manifests-test", Force: &force, FieldValidation: "Strict",
	})
	if err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

func (a *applier) delete(ctx context.Context, o *unstructured.Unstructured) error {
	ri, err := a.resource(o)
	if err != nil {
		return err
	}
	return ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{})
}

// runtimeFromUnstructured converts o into the typed object into, refusing unknown
// fields.
func runtimeFromUnstructured(o *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, into, true)
}
