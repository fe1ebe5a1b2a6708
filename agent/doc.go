// Package agent is Outpost's per-cluster loop. One agent per cluster is active (leader
// election on a Lease); it pulls the GitOps repository, renders and syncs its cluster's
// apps with the sync engine, watches the objects it manages for drift, and reports
// status and drift to the hub through a coalescing queue that survives hub outages.
//
// The agent never needs the hub to converge: without a hub it runs standalone from Git.
// When Git is unreachable it keeps the cluster as last synced and never prunes.
package agent
