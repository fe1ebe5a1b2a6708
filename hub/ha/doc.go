// Package ha coordinates the replicas of a highly available hub that share one
// PostgreSQL store and one remote Git repository.
//
// # Leases
//
// A Singleton runs work that must happen on one replica at a time (polling the remote
// repository; any driver that must not run twice, such as rollouts). Local is the
// Singleton of a hub that runs alone: it always holds every lease. Leases is the
// PostgreSQL one: a lease is a session advisory lock (pg_try_advisory_lock) held on a
// connection of its own. PostgreSQL frees it when the session ends, so when the
// holder's process dies (its connection closes) another replica takes the lease at its
// next try, within Config.TryInterval; when the holder's node or network goes, the
// server drops the silent session after its TCP keepalives (set per session to about
// Config.DeadAfter). The holder pings its connection every Config.CheckInterval and
// cancels its work's context at the first failed ping, before the server can have
// freed the lock, so two replicas never run the work at once.
//
// # Head fan-out
//
// A commit made through one replica moves that replica's Git head (a push to the
// remote); a webhook moves the head of the replica that received it. Bus tells the
// others: Publish sends the new head with PostgreSQL's NOTIFY, and Listen, on every
// replica, hands each head it hears to its callback (the hub fetches the remote, which
// moves its head and wakes its long-polling agents). After a lost connection the
// listener reconnects and calls back with an empty revision, "you may have missed a
// head": the hub fetches then too.
package ha
