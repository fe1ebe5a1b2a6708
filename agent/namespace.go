package agent

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-gitops/outpost/sync/object"
)

// agentNamespace is a namespace the agent itself writes to, and the flag that names it.
type agentNamespace struct {
	name, flag string
}

// ownNamespaces are the namespaces the agent writes its own objects to: the
// inventories' and, with leader election, the Lease's.
func (c Config) ownNamespaces() []agentNamespace {
	out := []agentNamespace{{c.InventoryNamespace, "inventory-namespace"}}
	if c.LeaderElect && c.LeaseNamespace != c.InventoryNamespace {
		out = append(out, agentNamespace{c.LeaseNamespace, "lease-namespace"})
	}
	return out
}

// NamespaceError is a namespace the agent needs (for its inventories or its Lease)
// that does not exist and that the agent may not create.
type NamespaceError struct {
	// Namespace is the missing namespace.
	Namespace string
	// Flag is the agent flag that names it ("inventory-namespace", "lease-namespace").
	Flag string
	// Err is the apiserver's refusal to create it.
	Err error
}

func (e *NamespaceError) Error() string {
	return fmt.Sprintf("namespace %q (--%s, %s) does not exist and this agent may not create it (%v): create it with \"kubectl create namespace %s\" (or \"kubectl apply -k manifests/namespace\" for outpost-system), or point --%s at an existing namespace",
		e.Namespace, e.Flag, EnvName(e.Flag), e.Err, e.Namespace, e.Flag)
}

func (e *NamespaceError) Unwrap() error { return e.Err }

// ensureNamespaces creates each of the agent's own namespaces that is missing, so an
// agent run outside the cluster against a fresh cluster starts without manifests. When
// the agent may not create one it returns a *NamespaceError instead of retrying for
// ever. Without the right to read Namespaces, a dry-run ConfigMap create in the
// namespace tells whether it exists; when that is refused too, the agent goes on (it
// cannot tell, and an agent with such narrow rights was installed with its namespace).
func ensureNamespaces(ctx context.Context, kube kubernetes.Interface, nss []agentNamespace, log *slog.Logger) error {
	for _, ns := range nss {
		missing, err := namespaceMissing(ctx, kube, ns.name)
		if err != nil {
			log.Debug("cannot tell whether the namespace exists", "namespace", ns.name, "err", err)
			continue
		}
		if !missing {
			continue
		}
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   ns.name,
			Labels: map[string]string{object.LabelManagedBy: object.DefaultManagedBy},
		}}
		_, err = kube.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
		switch {
		case err == nil:
			log.Info("created the agent's namespace", "namespace", ns.name, "flag", "--"+ns.flag)
		case apierrors.IsAlreadyExists(err):
		case apierrors.IsForbidden(err):
			return &NamespaceError{Namespace: ns.name, Flag: ns.flag, Err: err}
		default:
			return fmt.Errorf("create namespace %s (--%s): %w", ns.name, ns.flag, err)
		}
	}
	return nil
}

// namespaceMissing reports whether namespace name does not exist; an error means it
// cannot tell.
func namespaceMissing(ctx context.Context, kube kubernetes.Interface, name string) (bool, error) {
	_, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsNotFound(err):
		return true, nil
	case !apierrors.IsForbidden(err):
		return false, err
	}
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name, GenerateName: "outpost-namespace-probe-"}}
	_, err = kube.CoreV1().ConfigMaps(name).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsNotFound(err):
		return true, nil // "namespaces <name> not found"
	}
	return false, err
}
