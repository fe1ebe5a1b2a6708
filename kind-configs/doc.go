// Package kindconfigs holds the kind cluster definitions (a hub and two spokes) used by
// `make e2e-kind` for people with Docker; its test decodes each one with kind's own
// config API so that a typo fails CI on machines where kind cannot run.
package kindconfigs
