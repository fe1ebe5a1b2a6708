// Package localk8s runs real, local Kubernetes control planes for tests, tools
// (`outpost dev cluster`), the demo and benchmarks, without Docker. It does not import
// testing, so the outpost binary can link it; the test helpers built on it (one
// cluster per test package, a namespace per test) are in internal/testenv.
//
// A Cluster is a set of ordinary processes built by `make testbin` from the Go module
// proxy (see hack/testbin): etcd and kube-apiserver in ModeAPI, plus
// kube-controller-manager, kube-scheduler and kwok (fake kubelets) in ModeFull, so that
// Deployments become Available and DaemonSets schedule onto fake nodes. A full cluster
// may also have real nodes (Options.RealNodes): kubelets with their own containerd,
// runc and CNI bridge on this host, running real containers (realnode.go,
// docs/real-nodes.md); they need root and `make testbin-real-nodes`.
//
// Each cluster gets free loopback ports, its own directory (certificates, etcd data,
// kubeconfigs, one log file per component), an admin kubeconfig on disk and a token
// file for static admin authentication. Authorization is RBAC, and ServiceAccount
// tokens are minted with the TokenRequest API and checked by the apiserver, so RBAC
// tests are real.
//
// Every component runs in its own process group; Stop terminates the groups (SIGTERM,
// then SIGKILL) and waits for them. Unless Options.Detach is set, the processes also
// carry a parent-death signal, so they die with the test binary even when it is killed
// by a timeout. Several clusters can run side by side in one process.
//
// When a component fails to start, the error names it and the log file to read.
// When the binaries are missing or broken, the error names the binary and tells to
// run `make testbin`.
package localk8s
