package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// migration is one forward-only schema change.
type migration struct {
	// version numbers migrations from 1, consecutively.
	version int
	// name says what the migration does.
	name string
	// sql holds the statements, run in one transaction.
	sql string
}

// migrations returns the schema's migrations, in order. Append only: never edit or
// reorder one that was released.
func migrations() []migration {
	return []migration{
		{version: 1, name: "clusters", sql: `
CREATE TABLE clusters (
	name           TEXT PRIMARY KEY,
	labels         TEXT NOT NULL,          -- JSON object
	token_hash     BLOB NOT NULL UNIQUE,   -- SHA-256 of the agent token
	created_at     INTEGER NOT NULL,       -- Unix nanoseconds
	last_report_at INTEGER NOT NULL DEFAULT 0,
	agent_id       TEXT NOT NULL DEFAULT '',
	agent_pod      TEXT NOT NULL DEFAULT '',
	agent_version  TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;`},
		{version: 2, name: "app status and drift", sql: `
-- The key columns of each app's status, small so that fleet-wide summaries scan fast.
CREATE TABLE app_status (
	cluster     TEXT NOT NULL,
	app         TEXT NOT NULL,
	epoch       INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	version     TEXT NOT NULL,
	revision    TEXT NOT NULL,
	phase       TEXT NOT NULL,
	health      TEXT NOT NULL,
	drifted     INTEGER NOT NULL,           -- number of drift rows of the app
	last_synced INTEGER NOT NULL,           -- Unix nanoseconds, 0 if never
	received_at INTEGER NOT NULL,           -- Unix nanoseconds
	PRIMARY KEY (cluster, app)
) WITHOUT ROWID;
-- The full status of each app.
CREATE TABLE app_status_doc (
	cluster TEXT NOT NULL,
	app     TEXT NOT NULL,
	status  BLOB NOT NULL,                  -- JSON of api/v1 AppStatus
	PRIMARY KEY (cluster, app)
);
CREATE TABLE drift (
	cluster TEXT NOT NULL,
	app     TEXT NOT NULL,
	object  TEXT NOT NULL,                  -- group/kind/namespace/name
	drift   BLOB NOT NULL,                  -- JSON of api/v1 Drift
	PRIMARY KEY (cluster, app, object)
);`},
		{version: 3, name: "events", sql: `
CREATE TABLE events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	cluster     TEXT NOT NULL,
	app         TEXT NOT NULL,
	type        TEXT NOT NULL,
	time        INTEGER NOT NULL,           -- Unix nanoseconds
	revision    TEXT NOT NULL,
	version     TEXT NOT NULL,
	phase       TEXT NOT NULL,
	health      TEXT NOT NULL,
	message     TEXT NOT NULL,
	drifted     INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL
);
CREATE INDEX events_by_cluster ON events (cluster, id);
CREATE INDEX events_by_cluster_app ON events (cluster, app, id);`},
		{version: 4, name: "token rotation", sql: `
-- The token a rotation replaced, valid until old_token_expires (Unix nanoseconds).
ALTER TABLE clusters ADD COLUMN old_token_hash BLOB;
ALTER TABLE clusters ADD COLUMN old_token_expires INTEGER NOT NULL DEFAULT 0;
CREATE INDEX clusters_by_old_token ON clusters (old_token_hash);`},
		{version: 5, name: "rollouts and leases", sql: `
-- Rollout runs: the run is a JSON document (api/v1 Rollout); the columns index it.
CREATE TABLE rollouts (
	id         TEXT PRIMARY KEY,
	app        TEXT NOT NULL,
	state      TEXT NOT NULL,
	active     INTEGER NOT NULL,           -- 1 while the run holds its clusters
	generation INTEGER NOT NULL,           -- compare-and-swap of updates
	created_at INTEGER NOT NULL,           -- Unix nanoseconds
	doc        BLOB NOT NULL
);
CREATE INDEX rollouts_by_app ON rollouts (app, created_at);
-- At most one active run per app.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (app) WHERE active = 1;
-- Leases: work one hub process does at a time (driving rollouts).
CREATE TABLE leases (
	name   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires_at INTEGER NOT NULL            -- Unix nanoseconds
);`},
	}
}

// SchemaVersionError is returned when the database was migrated by a newer hub: this
// one does not know its schema and does not touch it.
type SchemaVersionError struct {
	// Have is the database's schema version.
	Have int
	// Known is the newest version this hub knows.
	Known int
}

// Error implements error.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this hub's %d: upgrade the hub", e.Have, e.Known)
}

// migrate brings db up to the last of ms, one transaction per migration, and returns
// the number of migrations applied.
func migrate(ctx context.Context, db *sql.DB, ms []migration, log *slog.Logger) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if have > len(ms) {
		return 0, &SchemaVersionError{Have: have, Known: len(ms)}
	}
	applied := 0
	for i, m := range ms {
		if m.version != i+1 {
			return applied, fmt.Errorf("migration %q has version %d, want %d", m.name, m.version, i+1)
		}
		done, err := applyMigration(ctx, db, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied++
			log.InfoContext(ctx, "applied store migration", "version", m.version, "name", m.name)
		}
	}
	return applied, nil
}

// applyMigration runs m unless it ran already (checked inside the transaction, so two
// processes opening one file never run it twice); done tells whether it ran.
func applyMigration(ctx context.Context, db *sql.DB, m migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migration %d (%s): begin: %w", m.version, m.name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if n > 0 {
		return false, tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("migration %d (%s): record: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d (%s): commit: %w", m.version, m.name, err)
	}
	return true, nil
}

// ignoreDone drops sql.ErrTxDone, which Rollback returns after a Commit.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
