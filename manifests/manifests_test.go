package manifests

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/hub"
	"github.com/outpost-gitops/outpost/hub/httpapi"
	"github.com/outpost-gitops/outpost/sync/render"
)

// controlPlaneOverlay is the cluster profile pinned to control-plane nodes, the way
// the component is meant to be used.
var controlPlaneOverlay = map[string]string{
	"test/control-plane/kustomization.yaml": `
resources: [../../agent/cluster]
components: [../../agent/components/control-plane]
`,
}

// targets are every build users apply, by name.
func targets(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	out := map[string][]*unstructured.Unstructured{}
	for _, dir := range []string{Hub, HubHA, AgentCluster, AgentNamespaced, HubSecrets, AgentSecrets} {
		out[dir] = build(t, dir)
	}
	out["agent/cluster+control-plane"] = buildOverlay(t, controlPlaneOverlay, "test/control-plane")
	return out
}

// workloads are the Deployments and DaemonSets of the builds, with their container.
var workloads = map[string]struct{ target, kind, name, container string }{
	"hub":              {Hub, "Deployment", HubName, HubContainer},
	"hub ha":           {HubHA, "Deployment", HubName, HubContainer},
	"agent cluster":    {AgentCluster, "DaemonSet", AgentName, AgentContainer},
	"agent namespaced": {AgentNamespaced, "DaemonSet", AgentName, AgentContainer},
}

func TestEveryKustomizationBuilds(t *testing.T) {
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Base(p) != "kustomization.yaml" {
			return err
		}
		data, err := fs.ReadFile(Files(), p)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		dir := path.Dir(p)
		t.Run(dir, func(t *testing.T) {
			var objs []*unstructured.Unstructured
			if k.Kind == "Component" {
				// A component builds on top of the agent's base.
				objs = buildOverlay(t, map[string]string{"test/c/kustomization.yaml": "resources: [../../agent/base]\ncomponents: [../../" + dir + "]\n"}, "test/c")
			} else {
				objs = build(t, dir)
			}
			if len(objs) == 0 {
				t.Fatal("builds no object")
			}
			for _, o := range objs {
				checkDecodesStrictly(t, o)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkDecodesStrictly converts o to its Go type, refusing unknown fields.
func checkDecodesStrictly(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	typ, err := scheme.Scheme.New(o.GroupVersionKind())
	if err != nil {
		t.Errorf("%s %s: unknown kind: %v", o.GetKind(), o.GetName(), err)
		return
	}
	if err := runtimeFromUnstructured(o, typ); err != nil {
		t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

func TestWorkloadsRunRestricted(t *testing.T) {
	builds := targets(t)
	for name, w := range workloads {
		t.Run(name, func(t *testing.T) {
			spec := podSpec(t, builds[w.target], w.kind, w.name)
			sc := spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
				sc.RunAsGroup == nil || *sc.RunAsGroup != 65532 || sc.FSGroup == nil || *sc.FSGroup != 65532 {
				t.Errorf("pod securityContext = %+v, want runAsNonRoot, uid/gid/fsGroup 65532", sc)
			}
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", sc)
			}
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Error("pod uses host namespaces")
			}
			if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
				t.Errorf("%d containers and %d init containers, want exactly one container", len(spec.Containers), len(spec.InitContainers))
			}
			for _, v := range spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
				if v.EmptyDir != nil && v.EmptyDir.SizeLimit == nil {
					t.Errorf("emptyDir %s has no sizeLimit", v.Name)
				}
			}
			c := container(t, spec, w.container)
			csc := c.SecurityContext
			if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
				t.Error("container: want readOnlyRootFilesystem")
			}
			if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
				t.Error("container: want allowPrivilegeEscalation false")
			}
			if csc == nil || csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
				t.Errorf("container capabilities = %+v, want drop [ALL] and no add", csc)
			}
			if csc != nil && csc.Privileged != nil && *csc.Privileged {
				t.Error("container is privileged")
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
					t.Errorf("container %s: request %s, limit %s: want both set, request ≤ limit", r, req.String(), lim.String())
				}
			}
			for probe, want := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
				if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.StrVal != "http" || port(c, "http") == 0 {
					t.Errorf("probe %s = %+v, want an HTTP GET of %s on the port named http", probe, want, probe)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("env %s comes from a Secret: Secrets are mounted as files", e.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					t.Errorf("envFrom Secret %s: Secrets are mounted as files", e.SecretRef.Name)
				}
			}
		})
	}
}

func TestAgentIsSmallAndElectsALeader(t *testing.T) {
	objs := build(t, AgentCluster)
	spec := podSpec(t, objs, "DaemonSet", AgentName)
	c := container(t, spec, AgentContainer)
	// The idle target is 40 MB RSS: the request covers it, the limit leaves headroom.
	if req := c.Resources.Requests[corev1.ResourceMemory]; req.Cmp(resource.MustParse("64Mi")) > 0 {
		t.Errorf("agent memory request %s, want at most 64Mi (idle target 40 MB)", req.String())
	}
	if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("256Mi")) > 0 {
		t.Errorf("agent memory limit %s, want at most 256Mi", lim.String())
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "node-role.kubernetes.io/control-plane" && tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule
	}) {
		t.Errorf("tolerations %+v: want the control-plane taint tolerated", spec.Tolerations)
	}
	if _, pinned := spec.NodeSelector["node-role.kubernetes.io/control-plane"]; pinned {
		t.Error("the default DaemonSet is pinned to control-plane nodes; that is the component's job")
	}
	pinned := podSpec(t, buildOverlay(t, controlPlaneOverlay, "test/control-plane"), "DaemonSet", AgentName)
	if v, ok := pinned.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok || v != "" || pinned.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("with the control-plane component nodeSelector = %v, want the control-plane role (and linux kept)", pinned.NodeSelector)
	}

	cfg := agentConfig(t, objs, agentPod(Namespace))
	if !cfg.LeaderElect || cfg.LeaseName != "outpost-agent" {
		t.Errorf("leader election %v on Lease %s, want on, Lease outpost-agent", cfg.LeaderElect, cfg.LeaseName)
	}
	if cfg.Identity != agentPod(Namespace).Name {
		t.Errorf("identity %q, want the pod name from the downward API", cfg.Identity)
	}
	if cfg.LeaseNamespace != Namespace || cfg.InventoryNamespace != Namespace {
		t.Errorf("Lease in %q, inventories in %q: want the pod's namespace %q", cfg.LeaseNamespace, cfg.InventoryNamespace, Namespace)
	}
	// The Role of the base grants exactly what the Lease and the inventories need.
	role := typed[rbacv1.Role](t, mustFind(t, objs, "Role", AgentName))
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
	}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("Role rules = %+v, want %+v", role.Rules, want)
	}
}

// agentVariants are the agent builds, with the configurations manifests/README.md
// documents (built from overlays like users write them).
func agentVariants(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	merge := func(literals ...string) string {
		return "resources: [../../agent/cluster]\nconfigMapGenerator:\n  - name: outpost-agent\n    namespace: outpost-system\n    behavior: merge\n    literals:\n" +
			"      - " + strings.Join(literals, "\n      - ") + "\n"
	}
	return map[string][]*unstructured.Unstructured{
		AgentCluster:    build(t, AgentCluster),
		AgentNamespaced: build(t, AgentNamespaced),
		"ssh": buildOverlay(t, map[string]string{"test/ssh/kustomization.yaml": merge(
			"OUTPOST_GIT_URL=ssh://git@git.example.com/platform/gitops.git", "OUTPOST_GIT_PASSWORD_FILE=",
			"OUTPOST_GIT_SSH_KEY_FILE=/etc/outpost/git/ssh-privatekey", "OUTPOST_GIT_KNOWN_HOSTS_FILE=/etc/outpost/git/known_hosts")}, "test/ssh"),
		"standalone": buildOverlay(t, map[string]string{"test/standalone/kustomization.yaml": merge(
			"OUTPOST_HUB_URL=", "OUTPOST_TOKEN_FILE=", "OUTPOST_GIT_URL=https://github.com/example/gitops.git",
			"OUTPOST_GIT_USERNAME=outpost", "OUTPOST_GIT_PASSWORD_FILE=/etc/outpost/git/password")}, "test/standalone"),
	}
}

func TestAgentConfigurationMatchesThePod(t *testing.T) {
	for variant, objs := range agentVariants(t) {
		t.Run(variant, func(t *testing.T) {
			spec := podSpec(t, objs, "DaemonSet", AgentName)
			c := container(t, spec, AgentContainer)
			cfg := agentConfig(t, objs, agentPod(Namespace))
			if p := listenPort(t, cfg.ListenAddr); p != strconv.Itoa(int(port(c, "http"))) {
				t.Errorf("--listen %s, want the container port named http (%d)", cfg.ListenAddr, port(c, "http"))
			}
			if !emptyDirMount(spec, c, cfg.CacheDir) {
				t.Errorf("--cache-dir %s is not a writable emptyDir mount", cfg.CacheDir)
			}
			files := map[string]*string{"token-file": &cfg.TokenFile, "git-password-file": &cfg.GitPasswordFile,
				"git-ssh-key-file": &cfg.GitSSHKeyFile, "git-known-hosts-file": &cfg.GitKnownHostsFile}
			for flag, file := range files {
				if *file == "" {
					continue
				}
				if _, _, ok := secretFile(spec, c, *file); !ok {
					t.Errorf("--%s %s is not a key of a mounted Secret", flag, *file)
				}
				*file = tempFile(t, "secret") // the Secret files exist only in a pod
			}
			if variant != "standalone" && (cfg.HubURL == "" || cfg.TokenFile == "") {
				t.Errorf("hub URL %q, token file %q: the install reports to a hub", cfg.HubURL, cfg.TokenFile)
			}
			cfg.CacheDir = t.TempDir()
			if err := cfg.Validate(); err != nil {
				t.Errorf("agent configuration: %v", err)
			}
			bound := namespacesOf(objs, TenantClusterRole)
			if !slices.Equal(sortedCopy(cfg.Namespaces), bound) {
				t.Errorf("OUTPOST_NAMESPACES = %v but the tenant ClusterRole is bound in %v: the lists must match", cfg.Namespaces, bound)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func TestRBACProfiles(t *testing.T) {
	agentSA := rbacv1.Subject{Kind: "ServiceAccount", Name: AgentName, Namespace: Namespace}
	cluster := build(t, AgentCluster)
	crb := typed[rbacv1.ClusterRoleBinding](t, mustFind(t, cluster, "ClusterRoleBinding", "outpost-agent-cluster"))
	if !reflect.DeepEqual(crb.Subjects, []rbacv1.Subject{agentSA}) || crb.RoleRef.Kind != "ClusterRole" || Find(cluster, "ClusterRole", crb.RoleRef.Name) == nil {
		t.Errorf("cluster profile binding = %+v, want the agent's ServiceAccount bound to a ClusterRole of the build", crb)
	}
	if got := namespacesOf(cluster, TenantClusterRole); len(got) > 0 {
		t.Errorf("cluster profile binds the tenant role in %v", got)
	}

	namespaced := build(t, AgentNamespaced)
	for _, o := range namespaced {
		if o.GetKind() == "ClusterRoleBinding" {
			t.Errorf("namespaced profile has ClusterRoleBinding %s: it must grant nothing cluster-wide", o.GetName())
		}
	}
	if got := namespacesOf(namespaced, TenantClusterRole); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("namespaced example binds the tenant role in %v, want [team-a team-b]", got)
	}
	for _, o := range namespaced {
		if o.GetKind() != "RoleBinding" {
			continue
		}
		rb := typed[rbacv1.RoleBinding](t, o)
		if !reflect.DeepEqual(rb.Subjects, []rbacv1.Subject{agentSA}) {
			t.Errorf("RoleBinding %s/%s subjects %+v, want only the agent's ServiceAccount", rb.Namespace, rb.Name, rb.Subjects)
		}
		if Find(namespaced, rb.RoleRef.Kind, rb.RoleRef.Name) == nil {
			t.Errorf("RoleBinding %s/%s refers to %s %s, not in the build", rb.Namespace, rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name)
		}
	}

	// No profile grants impersonation, or every verb.
	for name, objs := range map[string][]*unstructured.Unstructured{"cluster": cluster, "namespaced": namespaced} {
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
				continue
			}
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			data, _ := json.Marshal(rules)
			var rs []rbacv1.PolicyRule
			if err := json.Unmarshal(data, &rs); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if slices.Contains(r.Verbs, "*") || slices.Contains(r.Verbs, "impersonate") || len(r.NonResourceURLs) > 0 {
					t.Errorf("%s profile: %s %s grants %v on %v", name, o.GetKind(), o.GetName(), r.Verbs, r.Resources)
				}
			}
		}
	}
}

func TestOneImageReference(t *testing.T) {
	images := map[string]string{}
	for target, objs := range targets(t) {
		for where, img := range Images(objs) {
			images[target+": "+where] = img
		}
	}
	if len(images) < 3 {
		t.Fatalf("found %d containers, want the hub's and the agent's: %v", len(images), images)
	}
	var image string
	for where, img := range images {
		if image == "" {
			image = img
		}
		if img != image {
			t.Errorf("%s runs %s, another container runs %s: want one image", where, img, image)
		}
	}
	if !strings.Contains(image, "/") || !strings.Contains(image, ":") || strings.HasSuffix(image, ":latest") {
		t.Errorf("image %q: want a registry path and a pinned tag", image)
	}
	repo, _, _ := strings.Cut(image, ":")
	var files []string
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Files(), p)
		if err == nil && strings.Contains(string(data), repo) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, []string{"images/kustomization.yaml"}) {
		t.Errorf("the image %s is named in %v, want only images/kustomization.yaml", repo, files)
	}
}

func TestHubConfigurationMatchesThePod(t *testing.T) {
	variants := map[string][]*unstructured.Unstructured{
		"embedded repository": build(t, Hub),
		"remote repository and webhooks": buildOverlay(t, map[string]string{"test/remote/kustomization.yaml": `
resources: [../../hub]
configMapGenerator:
  - name: outpost-hub
    namespace: outpost-system
    behavior: merge
    literals:
      - OUTPOST_GIT_URL=https://git.example.com/platform/gitops.git
      - OUTPOST_GIT_USERNAME=outpost
      - OUTPOST_GIT_PASSWORD_FILE=/etc/outpost/git/password
      - OUTPOST_WEBHOOK_SECRET_FILE=/etc/outpost/webhook/secret
`}, "test/remote"),
		"ha": build(t, HubHA),
	}
	for variant, objs := range variants {
		t.Run(variant, func(t *testing.T) {
			spec := podSpec(t, objs, "Deployment", HubName)
			c := container(t, spec, HubContainer)
			cfg := hubConfig(t, objs)
			if pp := listenPort(t, cfg.ListenAddr); pp != strconv.Itoa(int(port(c, "http"))) {
				t.Errorf("--listen %s, want the container port named http (%d)", cfg.ListenAddr, port(c, "http"))
			}
			svc := typed[corev1.Service](t, mustFind(t, objs, "Service", HubName))
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
				t.Errorf("Service ports %+v, want one port to the container's http", svc.Spec.Ports)
			}
			dep := mustFind(t, objs, "Deployment", HubName)
			if !labelsMatch(svc.Spec.Selector, templateLabels(dep)) {
				t.Errorf("Service selector %v does not select the hub's pods %v", svc.Spec.Selector, templateLabels(dep))
			}
			if variant == "ha" {
				checkHA(t, objs, spec, c, cfg)
				return
			}
			// The data directory is the PVC, so hub.db and repo.git survive restarts.
			var dataVolume string
			for _, m := range c.VolumeMounts {
				if path.Clean(m.MountPath) == path.Clean(cfg.DataDir) && !m.ReadOnly {
					dataVolume = m.Name
				}
			}
			pvcName := ""
			for _, v := range spec.Volumes {
				if v.Name == dataVolume && v.PersistentVolumeClaim != nil {
					pvcName = v.PersistentVolumeClaim.ClaimName
				}
			}
			if pvcName == "" || Find(objs, "PersistentVolumeClaim", pvcName) == nil {
				t.Errorf("--data-dir %s is not a PersistentVolumeClaim of the build", cfg.DataDir)
			}
			if strategy, _, _ := unstructured.NestedString(dep.Object, "spec", "strategy", "type"); strategy != "Recreate" {
				t.Errorf("hub strategy %q, want Recreate (one writer of the SQLite file)", strategy)
			}
			checkHubFiles(t, spec, c, &cfg)
		})
	}
}

// checkHubFiles checks that every file flag of cfg is a key of a mounted Secret, and
// that the configuration, with the example Secrets, is valid.
func checkHubFiles(t *testing.T, spec corev1.PodSpec, c corev1.Container, cfg *hub.Config) {
	t.Helper()
	for flag, file := range map[string]*string{"admin-tokens-file": &cfg.AdminTokensFile,
		"git-password-file": &cfg.GitPasswordFile, "webhook-secret-file": &cfg.WebhookSecretFile, "store-file": &cfg.StoreFile} {
		if *file == "" {
			continue
		}
		secret, key, ok := secretFile(spec, c, *file)
		if !ok {
			t.Errorf("--%s %s is not a key of a mounted Secret", flag, *file)
			continue
		}
		content := "REPLACE-ME-0123456789abcdef"
		if s := Find(build(t, HubSecrets), "Secret", secret); s != nil {
			content = secretData(t, s, key)
		}
		*file = tempFile(t, content)
	}
	if cfg.AdminTokensFile == "" {
		t.Fatal("no --admin-tokens-file")
	}
	// The example admin tokens are a valid tokens file.
	if _, err := httpapi.LoadAdminTokens(cfg.AdminTokensFile); err != nil {
		t.Errorf("example admin tokens: %v", err)
	}
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Errorf("hub configuration: %v", err)
	}
}

// checkHA checks the highly available hub: several replicas replaced one at a time,
// spread over nodes, a PodDisruptionBudget keeping one, no volume claim, and the
// PostgreSQL store and a remote repository configured.
func checkHA(t *testing.T, objs []*unstructured.Unstructured, spec corev1.PodSpec, c corev1.Container, cfg hub.Config) {
	t.Helper()
	dep := mustFind(t, objs, "Deployment", HubName)
	if replicas, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); replicas < 2 {
		t.Errorf("replicas %d, want 2 or more", replicas)
	}
	if strategy, _, _ := unstructured.NestedString(dep.Object, "spec", "strategy", "type"); strategy != "RollingUpdate" {
		t.Errorf("strategy %q, want RollingUpdate", strategy)
	}
	if unavailable, _, _ := unstructured.NestedInt64(dep.Object, "spec", "strategy", "rollingUpdate", "maxUnavailable"); unavailable != 0 {
		t.Errorf("maxUnavailable %d, want 0", unavailable)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		!labelsMatch(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchLabels, templateLabels(dep)) {
		t.Errorf("affinity %+v, want anti-affinity between the hub's pods", spec.Affinity)
	}
	pdb := mustFind(t, objs, "PodDisruptionBudget", HubName)
	sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if minAvailable, _, _ := unstructured.NestedInt64(pdb.Object, "spec", "minAvailable"); minAvailable < 1 || !labelsMatch(sel, templateLabels(dep)) {
		t.Errorf("PodDisruptionBudget %v, want minAvailable 1 of the hub's pods", pdb.Object["spec"])
	}
	if Find(objs, "PersistentVolumeClaim", "outpost-hub-data") != nil {
		t.Error("the HA hub claims a volume: its replicas would share or fight over it")
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s claims %s", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if cfg.StoreFile == "" || cfg.GitURL == "" {
		t.Errorf("--store-file %q, --git-url %q: the HA hub needs both", cfg.StoreFile, cfg.GitURL)
	}
	checkHubFiles(t, spec, c, &cfg)
	dsn, err := os.ReadFile(cfg.StoreFile)
	if err != nil || !strings.HasPrefix(string(dsn), "postgres://") {
		t.Errorf("example store DSN %q, %v: want a postgres:// URL", dsn, err)
	}
}

func TestExampleSecretsFitTheMounts(t *testing.T) {
	for _, tc := range []struct{ workloads, secrets, kind, name string }{
		{Hub, HubSecrets, "Deployment", HubName},
		{HubHA, HubSecrets, "Deployment", HubName},
		{AgentCluster, AgentSecrets, "DaemonSet", AgentName},
	} {
		spec := podSpec(t, build(t, tc.workloads), tc.kind, tc.name)
		examples := build(t, tc.secrets)
		for _, o := range examples {
			if o.GetKind() != "Secret" || o.GetNamespace() != Namespace {
				t.Errorf("%s: %s %s/%s, want Secrets in %s", tc.secrets, o.GetKind(), o.GetNamespace(), o.GetName(), Namespace)
			}
		}
		for _, v := range spec.Volumes {
			if v.Secret == nil {
				continue
			}
			s := Find(examples, "Secret", v.Secret.SecretName)
			if s == nil {
				if v.Secret.Optional == nil || !*v.Secret.Optional {
					t.Errorf("%s: required Secret %s has no example", tc.secrets, v.Secret.SecretName)
				}
				continue
			}
			for _, it := range v.Secret.Items {
				secretData(t, s, it.Key)
			}
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
				t.Errorf("Secret volume %s: mode %v, want no access for others", v.Name, v.Secret.DefaultMode)
			}
		}
	}
}

// secretData returns the decoded value of key of the Secret s.
func secretData(t *testing.T, s *unstructured.Unstructured, key string) string {
	t.Helper()
	var sec corev1.Secret
	if err := runtimeFromUnstructured(s, &sec); err != nil {
		t.Fatal(err)
	}
	v, ok := sec.Data[key]
	if !ok {
		t.Fatalf("Secret %s has no key %q", s.GetName(), key)
	}
	return string(v)
}

func templateLabels(o *unstructured.Unstructured) map[string]string {
	l, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
	return l
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestBuildsApplyToARealAPIServer applies every build with server-side apply and
// strict field validation (a misspelt field fails), then creates, as a dry run, a pod
// of every workload's template in the restricted namespace, so that the apiserver's
// Pod Security admission judges it.
func TestBuildsApplyToARealAPIServer(t *testing.T) {
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	a := newApplier()
	for _, ns := range []string{"team-a", "team-b"} { // the namespaced example's tenants
		_, _ = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	}
	builds := targets(t)
	for _, target := range []string{Hub, HubHA, AgentCluster, AgentNamespaced, HubSecrets, AgentSecrets, "agent/cluster+control-plane"} {
		for _, o := range builds[target] {
			if err := a.apply(ctx, o); err != nil {
				t.Errorf("%s: %v", target, err)
			}
		}
	}
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace %s labels %v, want Pod Security enforce=restricted", Namespace, nsObj.Labels)
	}
	for name, w := range workloads {
		spec := podSpec(t, builds[w.target], w.kind, w.name)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-security-" + strings.ReplaceAll(name, " ", "-"), Namespace: Namespace}, Spec: spec}
		if _, err := cs.CoreV1().Pods(Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("%s: a pod of its template is refused in the restricted namespace: %v", name, err)
		}
	}
	// And the check can fail: a root container is refused.
	bad := podSpec(t, builds[Hub], "Deployment", HubName)
	bad.SecurityContext.RunAsNonRoot = nil
	bad.SecurityContext.RunAsUser = new(int64)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-security-root", Namespace: Namespace}, Spec: bad}
	if _, err := cs.CoreV1().Pods(Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil {
		t.Error("a root pod was admitted: Pod Security is not enforced in the namespace")
	}
}

// TestBuildTakesTheRenderersKustomizeLock: Build waits for the lock sync/render
// holds around its builds, the one lock of kustomize's process-wide state (two
// locks would let a manifests build and an app render run kustomize at once).
func TestBuildTakesTheRenderersKustomizeLock(t *testing.T) {
	unlock := render.LockKustomize()
	done := make(chan error, 1)
	go func() {
		_, err := Build(Files(), Hub)
		done <- err
	}()
	select {
	case err := <-done:
		unlock()
		t.Fatalf("Build finished (err %v) while sync/render held the kustomize lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Build did not finish after the lock was released")
	}
}
