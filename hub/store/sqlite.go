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

// SQLite is the Store in an embedded SQLite database file.
type SQLite struct {
	// w is the single writer connection; every write is one transaction on it.
	w *sql.DB
	// r is the pool of query-only reader connections.
	r *sql.DB
	// stmts are the report path's statements, prepared on w.
	stmts *reportStmts
	// maxEvents is Config.MaxEventsPerCluster.
	maxEvents int
	log       *slog.Logger
}

var _ Store = (*SQLite)(nil)

// Open opens (creating if needed) the database at cfg.Path and migrates it.
func Open(ctx context.Context, cfg Config) (*SQLite, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return open(ctx, cfg)
}

// open opens the database of a validated config and migrates it.
func open(ctx context.Context, cfg Config) (_ *SQLite, err error) {
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
	if _, err := migrate(ctx, w, migrations(), cfg.Logger); err != nil {
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
	return &SQLite{w: w, r: r, stmts: stmts, maxEvents: cfg.MaxEventsPerCluster, log: cfg.Logger}, nil
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

// Close closes both connection pools.
func (s *SQLite) Close() error {
	return errors.Join(s.r.Close(), s.stmts.Close(), s.w.Close())
}

// inTx runs fn in a write transaction and commits it, or rolls back on error.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
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
