package store

import "database/sql"

// Names of the dialects.
const (
	dialectSQLite   = "SQLite"
	dialectPostgres = "PostgreSQL"
)

// dialect is what differs between the databases DB runs on; the SQL of every query
// is shared.
type dialect struct {
	// name is dialectSQLite or dialectPostgres.
	name string
	// schemaMigrations creates the schema_migrations table if missing.
	schemaMigrations string
	// readTx are the options of a read transaction that must see one snapshot.
	readTx *sql.TxOptions
	// lockCluster, when set, locks the row of a cluster (argument: its name) until the
	// transaction ends, so that transactions on one cluster's rows take their locks in
	// one order; SQLite's single writer needs none.
	lockCluster string
	// retryable, when set, tells whether a failed transaction lost a conflict with
	// another and may run again.
	retryable func(error) bool
	// conflict, when set, tells whether an error is a unique violation and on which
	// constraint.
	conflict func(error) (constraint string, ok bool)
}

// sqliteDialect is the embedded SQLite database.
var sqliteDialect = &dialect{
	name: dialectSQLite,
	schemaMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
)`,
}

// postgresDialect is a PostgreSQL server.
var postgresDialect = &dialect{
	name: dialectPostgres,
	schemaMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`,
	// READ COMMITTED would give each statement its own snapshot.
	readTx:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	lockCluster: `SELECT 1 FROM clusters WHERE name = ? FOR UPDATE`,
	retryable:   pgRetryable,
	conflict:    pgUniqueViolation,
}
