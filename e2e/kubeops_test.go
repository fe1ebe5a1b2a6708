package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/manifests"
)

// fieldManager owns what the suite writes to the clusters with server-side apply.
const fieldManager = "outpost-e2e"

// restartedAtAnnotation is what `kubectl rollout restart` sets on a pod template.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// gitPasswordFile is where the hub and the agent mount the key "password" of their Git
// Secret (outpost-hub-git, outpost-git-credentials): manifests/README.md.
const gitPasswordFile = "/etc/outpost/git/password"

// hubDataClaim is the hub's PersistentVolumeClaim (manifests/hub/pvc.yaml).
const hubDataClaim = "outpost-hub-data"

// kubeOps installs, configures and restarts Outpost in clusters through their
// apiservers, the way an operator does with kubectl: objects built from manifests/ with
// kustomize overlays, Secrets from the example-secrets kustomizations with real values,
// configuration merged into the generated ConfigMaps (a new hash-suffixed name, so the
// workload's pod template changes), and rollout restarts. The configure and restart
// operations return once the rollout has completed.
type kubeOps struct {
	// hub is the cluster running the hub.
	hub *rest.Config
	// spokes are the clusters running agents, by cluster name.
	spokes map[string]*rest.Config
	// timeout bounds each rollout.
	timeout time.Duration
}

// hubSettings configure the hub for the suite.
type hubSettings struct {
	// AdminTokens is the admin tokens file ("name:token" per line).
	AdminTokens string
	// GitURL is the remote GitOps repository the hub reads and commits to.
	GitURL string
	// GitPassword is the password (token) of GitURL.
	GitPassword string
	// GitPollInterval is how often the hub fetches GitURL (OUTPOST_GIT_POLL_INTERVAL).
	GitPollInterval string
	// ResetData starts the hub on a new, empty data volume (no cluster registered).
	ResetData bool
}

// agentSettings configure one cluster's agent.
type agentSettings struct {
	// Cluster is the cluster's name at the hub and in Git.
	Cluster string
	// Token is the cluster's token at the hub.
	Token string
	// HubURL is the hub as pods of this cluster reach it.
	HubURL string
	// GitURL is the GitOps repository, as pods of this cluster reach it.
	GitURL string
	// GitPassword is the password (token) of GitURL.
	GitPassword string
	// Interval is the agent's periodic sync interval (OUTPOST_INTERVAL).
	Interval string
}

// install applies target (manifests.Hub or manifests.AgentCluster) to the cluster,
// with its containers on image when image is not empty.
func (k *kubeOps) install(ctx context.Context, rc *rest.Config, target, image string) error {
	objs, err := buildOverlay(target, image, "", nil)
	if err != nil {
		return err
	}
	if err := apply(ctx, rc, objs); err != nil {
		return fmt.Errorf("install %s: %w", target, err)
	}
	return nil
}

// configureHub writes the hub's Secrets and configuration and rolls the hub out with
// them (on a new data volume with ResetData).
func (k *kubeOps) configureHub(ctx context.Context, s hubSettings) error {
	secrets, err := buildSecrets(manifests.HubSecrets, map[string]string{
		"admin-tokens.example": s.AdminTokens,
	}, map[string]map[string]string{
		"outpost-hub-git": {"password": s.GitPassword},
	})
	if err != nil {
		return err
	}
	if err := apply(ctx, k.hub, secrets); err != nil {
		return fmt.Errorf("hub secrets: %w", err)
	}
	objs, err := buildOverlay(manifests.Hub, "", manifests.HubName, map[string]string{
		"OUTPOST_GIT_URL":           s.GitURL,
		"OUTPOST_GIT_PASSWORD_FILE": gitPasswordFile,
		"OUTPOST_GIT_POLL_INTERVAL": s.GitPollInterval,
	})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(k.hub)
	if err != nil {
		return fmt.Errorf("hub cluster client: %w", err)
	}
	if s.ResetData {
		if err := k.resetHubData(ctx, cs, objs); err != nil {
			return err
		}
	}
	return k.rollOut(ctx, k.hub, objs, "Deployment", manifests.HubName, manifests.HubContainer)
}

// resetHubData scales the hub to zero, replaces its PersistentVolumeClaim with a new
// one from the manifests, and leaves the scale-up to the rollout that follows.
func (k *kubeOps) resetHubData(ctx context.Context, cs kubernetes.Interface, objs []*unstructured.Unstructured) error {
	deps := cs.AppsV1().Deployments(manifests.Namespace)
	d, err := deps.Get(ctx, manifests.HubName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("hub Deployment: %w", err)
	}
	if _, err := deps.Patch(ctx, manifests.HubName, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale the hub to 0: %w", err)
	}
	selector := metav1.FormatLabelSelector(d.Spec.Selector)
	err = poll(ctx, "hub pods gone", k.timeout, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(manifests.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(pods.Items) == 0, err
	})
	if err != nil {
		return err
	}
	pvcs := cs.CoreV1().PersistentVolumeClaims(manifests.Namespace)
	if err := pvcs.Delete(ctx, hubDataClaim, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete PersistentVolumeClaim %s: %w", hubDataClaim, err)
	}
	err = poll(ctx, "PersistentVolumeClaim "+hubDataClaim+" deleted", k.timeout, func(ctx context.Context) (bool, error) {
		_, err := pvcs.Get(ctx, hubDataClaim, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return err
	}
	pvc := manifests.Find(objs, "PersistentVolumeClaim", hubDataClaim)
	if pvc == nil {
		return fmt.Errorf("build %s: no PersistentVolumeClaim %s", manifests.Hub, hubDataClaim)
	}
	if err := apply(ctx, k.hub, []*unstructured.Unstructured{pvc}); err != nil {
		return fmt.Errorf("hub data volume: %w", err)
	}
	return nil
}

// configureAgent writes the agent's Secrets and configuration in its cluster and rolls
// its DaemonSet out with them.
func (k *kubeOps) configureAgent(ctx context.Context, s agentSettings) error {
	rc, ok := k.spokes[s.Cluster]
	if !ok {
		return fmt.Errorf("no cluster %q", s.Cluster)
	}
	secrets, err := buildSecrets(manifests.AgentSecrets, map[string]string{
		"token.example":        s.Token,
		"git-password.example": s.GitPassword,
	}, nil)
	if err != nil {
		return err
	}
	if err := apply(ctx, rc, secrets); err != nil {
		return fmt.Errorf("%s: agent secrets: %w", s.Cluster, err)
	}
	objs, err := buildOverlay(manifests.AgentCluster, "", manifests.AgentName, map[string]string{
		"OUTPOST_CLUSTER":           s.Cluster,
		"OUTPOST_HUB_URL":           s.HubURL,
		"OUTPOST_GIT_URL":           s.GitURL,
		"OUTPOST_GIT_PASSWORD_FILE": gitPasswordFile,
		"OUTPOST_INTERVAL":          s.Interval,
	})
	if err != nil {
		return err
	}
	if err := k.rollOut(ctx, rc, objs, "DaemonSet", manifests.AgentName, manifests.AgentContainer); err != nil {
		return fmt.Errorf("%s: %w", s.Cluster, err)
	}
	return nil
}

// restartHub is `kubectl rollout restart` of the hub, waiting for the rollout; the
// hub keeps its data volume.
func (k *kubeOps) restartHub(ctx context.Context) error {
	return k.rollOut(ctx, k.hub, nil, "Deployment", manifests.HubName, "")
}

// restartAgent is `kubectl rollout restart` of a cluster's agent DaemonSet, waiting
// for the rollout.
func (k *kubeOps) restartAgent(ctx context.Context, cluster string) error {
	rc, ok := k.spokes[cluster]
	if !ok {
		return fmt.Errorf("no cluster %q", cluster)
	}
	if err := k.rollOut(ctx, rc, nil, "DaemonSet", manifests.AgentName, ""); err != nil {
		return fmt.Errorf("%s: %w", cluster, err)
	}
	return nil
}

// rollOut restarts the workload kind/name and waits for the rollout. With objs (a
// build of its kustomization), the container's ConfigMap from the build is applied
// first and the container's envFrom is pointed at it; the workload's replicas are
// those of the build.
func (k *kubeOps) rollOut(ctx context.Context, rc *rest.Config, objs []*unstructured.Unstructured, kind, name, container string) error {
	tmpl := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{restartedAtAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}},
	}
	spec := map[string]any{"template": tmpl}
	if objs != nil {
		w := manifests.Find(objs, kind, name)
		if w == nil {
			return fmt.Errorf("the build has no %s %s", kind, name)
		}
		var built corev1.PodTemplateSpec
		t, _, _ := unstructured.NestedMap(w.Object, "spec", "template")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(t, &built); err != nil {
			return fmt.Errorf("%s %s: pod template: %w", kind, name, err)
		}
		i := slices.IndexFunc(built.Spec.Containers, func(c corev1.Container) bool { return c.Name == container })
		if i < 0 {
			return fmt.Errorf("%s %s: no container %q", kind, name, container)
		}
		envFrom := built.Spec.Containers[i].EnvFrom
		var cms []*unstructured.Unstructured
		for _, e := range envFrom {
			if e.ConfigMapRef == nil {
				continue
			}
			cm := manifests.Find(objs, "ConfigMap", e.ConfigMapRef.Name)
			if cm == nil {
				return fmt.Errorf("%s %s: ConfigMap %s is not in the build", kind, name, e.ConfigMapRef.Name)
			}
			cms = append(cms, cm)
		}
		if err := apply(ctx, rc, cms); err != nil {
			return fmt.Errorf("%s %s: configuration: %w", kind, name, err)
		}
		tmpl["spec"] = map[string]any{"containers": []any{map[string]any{"name": container, "envFrom": envFrom}}}
		if r, ok, _ := unstructured.NestedInt64(w.Object, "spec", "replicas"); ok {
			spec["replicas"] = r
		}
	}
	patch, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	var done func(context.Context) (bool, error)
	switch kind {
	case "Deployment":
		api := cs.AppsV1().Deployments(manifests.Namespace)
		if _, err := api.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
			return fmt.Errorf("restart Deployment %s: %w", name, err)
		}
		done = func(ctx context.Context) (bool, error) {
			d, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return deploymentRolledOut(d)
		}
	case "DaemonSet":
		api := cs.AppsV1().DaemonSets(manifests.Namespace)
		if _, err := api.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
			return fmt.Errorf("restart DaemonSet %s: %w", name, err)
		}
		done = func(ctx context.Context) (bool, error) {
			ds, err := api.Get(ctx, name, metav1.GetOptions{})
			return err == nil && daemonSetRolledOut(ds), err
		}
	default:
		return fmt.Errorf("cannot roll out a %s", kind)
	}
	return poll(ctx, "rollout of "+kind+" "+name, k.timeout, done)
}

// deploymentRolledOut is `kubectl rollout status` for a Deployment: the new template
// observed, every replica updated and available, no old replica left.
func deploymentRolledOut(d *appsv1.Deployment) (bool, error) {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, fmt.Errorf("Deployment %s exceeded its progress deadline: %s", d.Name, c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want, nil
}

// daemonSetRolledOut is `kubectl rollout status` for a DaemonSet: the new template
// observed, and a pod of it scheduled and available on every node.
func daemonSetRolledOut(ds *appsv1.DaemonSet) bool {
	st := ds.Status
	return st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled > 0 &&
		st.UpdatedNumberScheduled == st.DesiredNumberScheduled && st.NumberAvailable == st.DesiredNumberScheduled
}

// buildOverlay builds target under a kustomize overlay that sets the image (when not
// empty) and merges literals into the generated ConfigMap configMap.
func buildOverlay(target, image, configMap string, literals map[string]string) ([]*unstructured.Unstructured, error) {
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{"../" + target},
	}
	if image != "" {
		base, err := manifests.Build(manifests.Files(), target)
		if err != nil {
			return nil, err
		}
		var images []map[string]string
		seen := map[string]bool{}
		for _, ref := range manifests.Images(base) {
			old, _ := splitImage(ref)
			if !seen[old] {
				seen[old] = true
				name, tag := splitImage(image)
				images = append(images, map[string]string{"name": old, "newName": name, "newTag": tag})
			}
		}
		k["images"] = images
	}
	if configMap != "" {
		var lits []string
		for _, key := range slices.Sorted(maps.Keys(literals)) {
			lits = append(lits, key+"="+literals[key])
		}
		k["configMapGenerator"] = []map[string]any{{
			"name": configMap, "namespace": manifests.Namespace, "behavior": "merge", "literals": lits,
		}}
	}
	return buildWith(target, k, nil)
}

// buildSecrets builds the example-secrets kustomization dir with its *.example files
// replaced by real values (file name → content) and extra Secrets (name → key →
// value) generated next to them, named without a hash as the workloads expect.
func buildSecrets(dir string, files map[string]string, extra map[string]map[string]string) ([]*unstructured.Unstructured, error) {
	k := map[string]any{
		"apiVersion":       "kustomize.config.k8s.io/v1beta1",
		"kind":             "Kustomization",
		"namespace":        manifests.Namespace,
		"resources":        []string{"../" + dir},
		"generatorOptions": map[string]any{"disableNameSuffixHash": true, "labels": map[string]string{"app.kubernetes.io/part-of": "outpost"}},
	}
	add := map[string]string{}
	for name, content := range files {
		add[dir+"/"+name] = content
	}
	var gens []map[string]any
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		var fromFiles []string
		for _, key := range slices.Sorted(maps.Keys(extra[name])) {
			add["e2e-overlay/"+name+"."+key] = extra[name][key]
			fromFiles = append(fromFiles, key+"="+name+"."+key)
		}
		gens = append(gens, map[string]any{"name": name, "files": fromFiles})
	}
	if gens != nil {
		k["secretGenerator"] = gens
	}
	return buildWith(dir, k, add)
}

// buildWith builds the kustomization k (placed in a directory next to the manifests'
// top-level ones) over the manifests with files added (path → content).
func buildWith(target string, k map[string]any, add map[string]string) ([]*unstructured.Unstructured, error) {
	data, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	files := map[string]string{"e2e-overlay/kustomization.yaml": string(data)}
	maps.Copy(files, add)
	var fsys fs.FS
	if fsys, err = manifests.Overlay(files); err != nil {
		return nil, err
	}
	objs, err := manifests.Build(fsys, "e2e-overlay")
	if err != nil {
		return nil, fmt.Errorf("overlay of %s: %w", target, err)
	}
	return objs, nil
}

// splitImage splits an image reference into its name and tag ("latest" if none).
func splitImage(ref string) (name, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// apply applies objs to the cluster with server-side apply, in order.
func apply(ctx context.Context, rc *rest.Config, objs []*unstructured.Unstructured) error {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	force := true
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// poll calls done every 250 ms until it reports true, fails, or timeout passes.
func poll(ctx context.Context, what string, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := done(ctx)
		if ok {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
