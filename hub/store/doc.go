// Package store is the hub's status store: the cluster registry with its agent
// tokens, the latest status and drift of every app on every cluster, and a bounded
// history of events (syncs, errors, health changes, drift). It holds soft state only:
// desired state lives in Git, so losing the store loses no desired state.
//
// # Model
//
// Store is the interface the hub uses (Registry + Statuses); DB implements it on an
// embedded SQLite database file (modernc.org/sqlite, no cgo; the default) or on a
// PostgreSQL database (Config.DSN, pgx) that several hub replicas share. Both run the
// same queries; the schema is written once per database in each migration.
//
//   - Clusters are registered with the SHA-256 hash of their agent token (HashToken,
//     NewToken); the token itself is never stored. LookupToken finds the cluster of a
//     hash; registering a name twice is a *ConflictError; an unknown cluster is
//     ErrNotFound.
//   - ApplyReport stores an agent's StatusReport (validated by the caller). For each
//     app it carries, the status replaces the stored one only if its Generation is
//     greater: a stale or repeated report never overwrites a newer state, and its drift
//     is ignored with it. An accepted app's drift replaces the stored drift (one row per
//     object); no drift for the app clears it; a Removed app keeps its status as a
//     tombstone and loses its drift. The cluster's last-report time and agent are
//     updated by every report, stale or not.
//   - Events are derived from the difference between the stored and the new state of
//     an app (deriveEvents, pure): a sync that changed objects or the version or ended a
//     failure, a new or different error, a health change, a change of drift. The newest
//     Config.MaxEventsPerCluster events of each cluster are kept.
//
// # SQLite
//
// The database runs in WAL mode with synchronous=NORMAL (a crash of the hub loses
// nothing committed; a power loss may lose the last transactions, which agents resend)
// and a busy timeout. Writes go through a single writer connection (BEGIN IMMEDIATE),
// reads through a pool of query-only connections that see committed snapshots and never
// block the writer. Reports that arrive while others are being written share one
// transaction (group commit, up to 64, each in a savepoint of its own so that one that
// fails leaves the others stored; see reportBatcher); a lone report is one transaction.
// A report is acknowledged only after its transaction committed.
//
// # PostgreSQL
//
// The store's SQL is written with ? placeholders; the PostgreSQL connections number
// them. Writes go through a pool shared with reads; the report path locks its
// cluster's row first (its first statement updates it), so two replicas storing
// reports of one cluster take turns and the newest generation wins. A registration
// racing another replica's is a *ConflictError (the unique constraints decide), a
// transaction that loses a deadlock or a serialization conflict runs again, and reads
// that must see one snapshot (status with its drift) run in a REPEATABLE READ
// transaction. Migrations run under an advisory lock, so replicas starting together
// migrate once.
//
// Migrations are versioned and forward-only: each runs once, in its own transaction,
// and is recorded in the schema_migrations table. Opening a database written by a newer
// hub (a version this one does not know) fails with a *SchemaVersionError.
package store
