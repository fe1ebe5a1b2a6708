package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DB is the Store in a SQL database: an embedded SQLite file (the default) or a
// PostgreSQL server (Config.DSN), which several hub replicas can share. Both run the
// same SQL (written with ? placeholders, which the PostgreSQL connections rewrite);
// only the schema (migrations) and a few options differ, in dialect.
type DB struct {
	// w is the pool writes go through: SQLite's single writer connection (every write
	// is one transaction on it), or PostgreSQL's pool.
	w *sql.DB
	// r is the pool reads go through: SQLite's query-only reader connections, or
	// PostgreSQL's pool (r == w).
	r *sql.DB
	// d is the database's dialect.
	d *dialect
	// stmts are the report path's statements, prepared on w.
	stmts *reportStmts
	// batch groups concurrent reports into one transaction (SQLite); nil stores each
	// report in its own (PostgreSQL, whose pool writes in parallel).
	batch *reportBatcher
	// maxEvents is Config.MaxEventsPerCluster.
	maxEvents int
	log       *slog.Logger
}

// SQLite is the name DB had when SQLite was its only database.
type SQLite = DB

var _ Store = (*DB)(nil)

// Open opens the store and migrates it: the PostgreSQL database of cfg.DSN when set,
// else the SQLite file cfg.Path (created if needed).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.DSN != "" {
		return openPostgres(ctx, cfg)
	}
	return open(ctx, cfg)
}

// open opens the SQLite database of a validated config and migrates it.
func open(ctx context.Context, cfg Config) (_ *DB, err error) {
	w, err := sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Close())
		}
	}()
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("open store %s: journal mode is %q, not WAL", cfg.Path, mode)
	}
	if _, err := migrate(ctx, w, sqliteDialect, migrations(), cfg.Logger); err != nil {
		return nil, fmt.Errorf("migrate store %s: %w", cfg.Path, err)
	}
	stmts, err := prepareReportStmts(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stmts.Close())
		}
	}()
	r, err := sql.Open("sqlite", dsn(cfg, true))
	if err != nil {
		return nil, fmt.Errorf("open store %s for reading: %w", cfg.Path, err)
	}
	r.SetMaxOpenConns(cfg.Readers)
	r.SetMaxIdleConns(cfg.Readers)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s for reading: %w", cfg.Path, err), r.Close())
	}
	return &DB{w: w, r: r, d: sqliteDialect, stmts: stmts, batch: &reportBatcher{}, maxEvents: cfg.MaxEventsPerCluster, log: cfg.Logger}, nil
}

// dsn builds the driver's data source name: the file, WAL, synchronous=NORMAL, the
// busy timeout, BEGIN IMMEDIATE for the writer and query_only for readers.
func dsn(cfg Config, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return cfg.Path + "?" + q.Encode()
}

// Close closes the connection pools.
func (s *DB) Close() error {
	if s.batch != nil {
		s.batch.close() // the queued reports are written first
	}
	if s.r == s.w {
		return errors.Join(s.stmts.Close(), s.w.Close())
	}
	return errors.Join(s.r.Close(), s.stmts.Close(), s.w.Close())
}

// inTx runs fn in a write transaction and commits it, or rolls back on error. On
// PostgreSQL, a transaction that lost a deadlock or a serialization conflict with
// another replica's is run again, a few times.
func (s *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.inTxOnce(ctx, fn)
		if err == nil || s.d.retryable == nil || !s.d.retryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			return err
		}
		s.log.DebugContext(ctx, "transaction conflicted with another; running it again", "attempt", attempt, "err", err)
	}
}

// maxTxAttempts bounds the runs of a transaction that keeps conflicting.
const maxTxAttempts = 5

func (s *DB) inTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
