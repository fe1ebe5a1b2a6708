// Package e2e is Outpost's end-to-end suite: a hub, a Git server and an agent per
// cluster on real Kubernetes clusters, driven through the CLI, the API and Git, the
// way a platform team uses it.
//
// On this machine the suite provisions everything itself (make test): two full local
// clusters from internal/testenv, an in-process Git server, the hub and the agents.
// The scenarios only use kubeconfigs, the hub's URL and the Git remote, so the same
// scenarios are meant to run against kind clusters (kind-configs/) for users with
// Docker.
package e2e
