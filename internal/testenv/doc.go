// Package testenv is the test side of internal/localk8s: a package's tests share one
// real local control plane started in TestMain (RunMain), and each test gets its own
// namespace (CreateNamespace). It imports testing, so only tests and test helpers
// import it; the outpost binaries use localk8s.
//
// The names of localk8s that tests use are repeated here, so that a test needs one
// import.
package testenv
