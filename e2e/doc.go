// Package e2e is Outpost's end-to-end suite: a hub, a Git server and an agent per
// cluster on real Kubernetes clusters, driven through the CLI, the API and Git, the
// way a platform team uses it.
//
// TestFleet runs against a fleet: kubeconfigs of the clusters "dev" and "prod", the
// hub's URL, the Git remote the suite commits to, and operations to start an agent
// with its token and to restart an agent or the hub. Two fleets implement it:
//
//   - local (the default; make e2e, part of make test): two full local clusters from
//     internal/testenv with the agent's manifests installed (the DaemonSet is scheduled
//     on kwok nodes), an in-process Git server seeded from examples/, the hub as a
//     process, and one agent process per cluster started exactly as the DaemonSet
//     would start it, authenticated with the installed ServiceAccount's token.
//   - kube (make e2e-kind, or any clusters): the hub and the agents run in the
//     clusters from manifests/. The suite configures them through the apiservers as
//     an operator would: Secrets built from manifests/*/example-secrets with real
//     values, configuration merged into the generated ConfigMaps, rollouts and rollout
//     restarts (the hub keeps its data on its PersistentVolumeClaim across restarts;
//     it starts on a new one). Its Git server listens on an address the pods reach.
//
// The kube fleet is selected by these variables (all required once one is set):
//
//	OUTPOST_E2E_HUB_KUBECONFIG   kubeconfig of the hub's cluster
//	OUTPOST_E2E_KUBECONFIG_DEV   kubeconfig of the cluster "dev"
//	OUTPOST_E2E_KUBECONFIG_PROD  kubeconfig of the cluster "prod"
//	OUTPOST_E2E_HUB_URL          the hub as the suite reaches it (kind: http://127.0.0.1:8080)
//	OUTPOST_E2E_GIT_HOST         the address the suite's Git server listens on, reachable
//	                             from the pods (kind: the "kind" network's gateway)
//
// and optionally:
//
//	OUTPOST_E2E_AGENT_HUB_URL    the hub as pods in dev and prod reach it (default:
//	                             OUTPOST_E2E_HUB_URL; kind: http://<hub node IP>:30080)
//	OUTPOST_E2E_IMAGE            install manifests/ (hub; agents with the cluster profile)
//	                             with this image before configuring; unset, Outpost must
//	                             be installed already
//	OUTPOST_E2E_ROLLOUT_TIMEOUT  bound of each rollout (default 3m)
//
// hack/e2e-kind.sh (make e2e-kind) creates the kind clusters of kind-configs/, builds
// and loads the image, installs manifests/ with kubectl apply -k and sets these.
// TestKubeOpsOnKwok runs the kube fleet's install, configure and restart operations on
// a full local cluster and checks their effects in Kubernetes; only whether the
// outpost processes in those pods answer is left to a run on kind.
package e2e
