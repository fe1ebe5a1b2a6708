// Package fleetdiff computes what a change to the GitOps repository does to every
// cluster: it loads and renders two checkouts of the repository (base and head) with
// Outpost's own loader and renderer, per cluster and app, and pairs the objects by
// identity (object.Ref). The result is typed data: per cluster and app, the objects
// added, removed (those an agent would prune) and changed, each with a unified YAML
// diff, plus the render errors of either side. Formatting (text, JSON, Markdown) is
// separate and pure.
//
// Secret values never appear: the data and stringData values of a core v1 Secret
// (field.SecretValue's policy) are replaced by an HMAC mask under a key drawn per
// run, so a diff shows that a value changed and never the value.
//
// An app whose inputs did not change is rendered once: after the base render, the
// files it read (render.Result.Sources), its apps.yaml entry and the cluster's labels
// and variables are compared with the head checkout; when all are equal the head
// render is the base render.
//
// With a Planner per cluster (Options.Live), the head render is also previewed on the
// running cluster as a sync would apply it, with the app's options (apply.OptionsFor
// its head app.yaml): drift that an app with drift: report keeps shows as kept, not
// as an update. Remote Helm charts are fetched with Options.Charts.
//
// The package reads only the two directories it is given; turning Git revisions
// into directories is the caller's (the CLI exports commits with go-git).
package fleetdiff
