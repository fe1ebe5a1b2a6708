package render

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// NamespacedFunc tells whether objects of a kind live in a namespace. A
// RESTMapper-backed one is
//
//	func(gvk schema.GroupVersionKind) (bool, error) {
//		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
//		if err != nil {
//			return false, err
//		}
//		return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
//	}
type NamespacedFunc func(gvk schema.GroupVersionKind) (bool, error)

// clusterScoped lists the cluster-scoped kinds of Kubernetes 1.37 (and a few
// well-known custom resources) by group and kind, for every version. Kinds of other API groups, e.g. custom resources, are
// not known here; see BuiltinNamespaced.
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                                    true,
	{Group: "", Kind: "Node"}:                                                         true,
	{Group: "", Kind: "PersistentVolume"}:                                             true,
	{Group: "", Kind: "ComponentStatus"}:                                              true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                        true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "storage.k8s.io", Kind: "VolumeAttributesClass"}:                          true,
	{Group: "storagemigration.k8s.io", Kind: "StorageVersionMigration"}:               true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                   true,
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                                 true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
	{Group: "certificates.k8s.io", Kind: "ClusterTrustBundle"}:                        true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "internal.apiserver.k8s.io", Kind: "StorageVersion"}:                      true,
	{Group: "resource.k8s.io", Kind: "DeviceClass"}:                                   true,
	{Group: "resource.k8s.io", Kind: "ResourceSlice"}:                                 true,
	{Group: "authentication.k8s.io", Kind: "TokenReview"}:                             true,
	{Group: "authentication.k8s.io", Kind: "SelfSubjectReview"}:                       true,
	{Group: "authorization.k8s.io", Kind: "SubjectAccessReview"}:                      true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectAccessReview"}:                  true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectRulesReview"}:                   true,
	{Group: "policy", Kind: "PodSecurityPolicy"}:                                      true,
	// Well-known cluster-scoped custom resources.
	{Group: "snapshot.storage.k8s.io", Kind: "VolumeSnapshotClass"}:   true,
	{Group: "snapshot.storage.k8s.io", Kind: "VolumeSnapshotContent"}: true,
	{Group: "gateway.networking.k8s.io", Kind: "GatewayClass"}:        true,
}

// crdGroupKind is the kind whose objects define other kinds.
var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// BuiltinNamespaced returns the NamespacedFunc used without an apiserver: kinds
// defined by a CustomResourceDefinition among objs follow its spec.scope; the
// well-known cluster-scoped kinds of Kubernetes are cluster-scoped; every other
// kind is taken as namespaced. The last rule is wrong for cluster-scoped custom
// resources whose CRD is not part of the render (e.g. cert-manager's
// ClusterIssuer when cert-manager is another app): pass a RESTMapper-backed
// NamespacedFunc in Options to get those right.
func BuiltinNamespaced(objs []*unstructured.Unstructured) NamespacedFunc {
	crds := crdScopes(objs)
	return func(gvk schema.GroupVersionKind) (bool, error) {
		if namespaced, ok := crds[gvk.GroupKind()]; ok {
			return namespaced, nil
		}
		return !clusterScoped[gvk.GroupKind()], nil
	}
}

// withCRDFallback consults f first; when f fails (a RESTMapper does not know a
// kind whose CRD is applied in the same sync), a CRD among objs decides.
func withCRDFallback(f NamespacedFunc, objs []*unstructured.Unstructured) NamespacedFunc {
	crds := crdScopes(objs)
	return func(gvk schema.GroupVersionKind) (bool, error) {
		namespaced, err := f(gvk)
		if err == nil {
			return namespaced, nil
		}
		if namespaced, ok := crds[gvk.GroupKind()]; ok {
			return namespaced, nil
		}
		return false, fmt.Errorf("scope of %s: %w", gvk, err)
	}
}

// crdScopes maps the kinds defined by the CRDs among objs to "namespaced".
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != crdGroupKind {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		if kind != "" {
			out[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
		}
	}
	return out
}
