// Package kindconfigs holds the kind cluster definitions (a hub and two spokes) used by
// `make e2e-kind` for people with Docker; its test decodes each one with kind's own
// config API so that a typo fails CI on machines where kind cannot run, and checks that
// hack/e2e-kind.sh uses the hub's port mapping (NodePort 30080 → 127.0.0.1:8080).
package kindconfigs
