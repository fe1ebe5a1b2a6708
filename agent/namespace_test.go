package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/outpost-gitops/outpost/sync/object"
)

// deleteNamespaceAtEnd deletes name when the test ends (it may not exist).
func deleteNamespaceAtEnd(t *testing.T, cs kubernetes.Interface, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

// An agent run outside the cluster against a cluster without its namespace (Lease and
// inventories) creates it and syncs, instead of retrying the Lease for ever.
func TestAgentCreatesItsMissingNamespace(t *testing.T) {
	ns := env.CreateNamespace(t)
	sys := ns + "-sys"
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	deleteNamespaceAtEnd(t, cs, sys)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	a := startAgent(t, repo.url(), sys, func(c *Config) {
		c.LeaderElect, c.LeaseNamespace, c.Identity = true, sys, "agent-a"
	})
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	got, err := cs.CoreV1().Namespaces().Get(t.Context(), sys, metav1.GetOptions{})
	if err != nil || got.Labels[object.LabelManagedBy] != object.DefaultManagedBy {
		t.Fatalf("namespace %s = %+v, %v: want created, labeled managed-by outpost", sys, got, err)
	}
	a.stop(t)
}

// An identity that may not create the missing namespace stops at once with one error
// naming the namespace and the fix.
func TestAgentWithoutRightToCreateItsNamespaceStopsWithClearError(t *testing.T) {
	ns := env.CreateNamespace(t)
	sys := ns + "-sys"
	user := ns + "-limited"
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	deleteNamespaceAtEnd(t, cs, sys)
	// Everything the agent needs on ConfigMaps and Leases, nothing on Namespaces.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	if _, err := cs.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, user, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, user, metav1.DeleteOptions{})
	})
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	a := startAgent(t, repo.url(), sys, func(c *Config) {
		c.LeaderElect, c.LeaseNamespace, c.Identity = true, sys, "agent-a"
		c.RESTConfig.Impersonate = rest.ImpersonationConfig{UserName: user}
	})
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent still runs 30s later; want it to stop with an error")
	}
	var nerr *NamespaceError
	if !errors.As(a.err, &nerr) || nerr.Namespace != sys || !apierrors.IsForbidden(nerr.Err) {
		t.Fatalf("agent stopped with %v; want a *NamespaceError for %s", a.err, sys)
	}
	for _, want := range []string{`namespace "` + sys + `"`, "--inventory-namespace", "kubectl create namespace " + sys} {
		if !strings.Contains(a.err.Error(), want) {
			t.Errorf("error %q does not contain %q", a.err, want)
		}
	}
}
