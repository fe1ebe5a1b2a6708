// Package field is the one model of a field inside an object: the path that names it,
// the equality that decides whether it changed, how list elements are matched, and
// which fields hold secret values. Plan diffs (package sync/plan) and drift reports
// (package sync/drift) both build their paths and compare their values here, so one
// field prints the same in `outpost plan`, in the agent's logs and at the hub:
//
//	spec.template.spec.containers[name=web].ports[containerPort=80,protocol=TCP].name
//	metadata.labels["app.kubernetes.io/name"]
//	metadata.finalizers[="example.com/cleanup"]
//	spec.args[2]
//
// Lists are matched the way the API server's structured merge does: by the key fields
// of an associative list, by value for a set, by index for an atomic list. The element
// kinds are read from managedFields (k:, v:, i: entries of fieldsV1), which both a
// live object and a server-side dry-run result carry; the fast paths that read them
// without structured-merge-diff's parser are fuzzed against it (keys_test.go).
//
// Secret policy: the values of a core v1 Secret's data and stringData, and kubectl's
// last-applied-configuration annotation on a Secret (a copy of those values), are
// never shown. SecretValue says which paths those are; plan masks them with an HMAC
// (a change stays visible), drift replaces them with Redacted.
package field
