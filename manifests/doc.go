// Package manifests holds how Outpost installs itself (kustomize), embedded so that Go
// code can build it: the tests of this package, and the e2e suite, which runs agents
// with exactly the RBAC and configuration users install.
//
// # Layout
//
//	images/                      Component: the one place naming Outpost's image
//	namespace/                   the outpost-system Namespace (restricted Pod Security)
//	hub/                         the hub: Deployment, Service, PVC, ServiceAccount
//	hub/example-secrets/         example Secrets of the hub (admin tokens, webhook)
//	agent/base/                  the agent: DaemonSet, ServiceAccount, Role for its
//	                             Lease and inventories, ConfigMap from agent.env
//	agent/components/cluster/    RBAC profile for platform repos: any kind, anywhere
//	agent/components/namespaced/ RBAC profile for tenant repos: a ClusterRole that
//	                             RoleBindings grant in listed namespaces only
//	agent/components/control-plane/ pins the DaemonSet to control-plane nodes
//	agent/cluster/               base + cluster profile, ready to apply
//	agent/namespaced/            base + namespaced profile for team-a and team-b (example)
//	agent/example-secrets/       example Secrets of the agent (hub token, Git credentials)
//
// Build runs kustomize the way `kubectl apply -k` does (builtin plugins only, files
// confined to the kustomization's root) on Files, or on Files plus an overlay of the
// caller's (Overlay). Process resolves a workload's container into the arguments and
// environment its process gets, so that a test can run the agent as the DaemonSet
// would.
//
// README.md in this directory is the user documentation: profiles, Secrets layout,
// customization.
package manifests
