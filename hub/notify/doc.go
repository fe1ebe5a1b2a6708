// Package notify is the hub's long-poll notifier: agents wait for "the desired
// revision of my cluster changed"; the hub publishes changes after a commit or a Git
// webhook.
//
// # Model
//
// The Notifier knows, per cluster, its current desired revision: the Git revision at
// which the cluster's desired state last changed. Publish(rev, clusters) makes rev the
// current revision of the named clusters; PublishAll(rev) of every cluster (at start,
// or when a commit changed what every cluster renders, e.g. an app's manifests).
//
// Wait(ctx, cluster, since) answers at once with Changed true when since is not up to
// date for the cluster; otherwise it blocks until a publish changes the cluster's
// revision (Changed true), its context ends (an error), or Config.Timeout passes,
// jittered by Config.Jitter (Changed false). Every answer carries the cluster's current
// revision, which the agent passes back as since in its next Wait.
//
// since is up to date when it is the cluster's current revision, or a revision
// published at or after the cluster's last change (an agent that fetched a newer head
// of the branch, which did not touch its cluster, need not fetch again). The notifier
// remembers the publish order of the last Config.Remember revisions for that; an
// unknown since (empty, too old, or from before a hub restart) is not up to date.
// Publishes must be made in the order the revisions became the branch head.
//
// # Cost
//
// Waiting costs no goroutine (the caller's own, the HTTP handler's) and a timer. Each
// cluster has a channel that a publish touching it closes and replaces, waking only
// that cluster's waiters; PublishAll closes one shared channel. A publish costs
// O(clusters named), never a scan of all waiters, so 10 000 waiting agents are cheap and
// a publish for one cluster wakes one agent.
package notify
