package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations, so
// that replicas starting together migrate once.
var migrationLockKey = advisoryKey("outpost/store/migrate")

// advisoryKey returns the 64-bit advisory lock key of a name.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// parsePostgresDSN parses a PostgreSQL connection string (URL or key=value); its
// errors never hold the password.
func parsePostgresDSN(dsn string) (*pgx.ConnConfig, error) {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL DSN: %w", err) // pgconn redacts the password
	}
	return c, nil
}

// openPostgres opens the PostgreSQL database of a validated config and migrates it.
func openPostgres(ctx context.Context, cfg Config) (_ *DB, err error) {
	cc, err := parsePostgresDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("PostgreSQL database %q on %s:%d", cc.Database, cc.Host, cc.Port)
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cc)})
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	defer func() {
		if err != nil {
			err = errors.Join(err, db.Close())
		}
	}()
	if err := migratePostgres(ctx, db, cfg); err != nil {
		return nil, fmt.Errorf("migrate store %s: %w", where, err)
	}
	stmts, err := prepareReportStmts(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	return &DB{w: db, r: db, d: postgresDialect, stmts: stmts, maxEvents: cfg.MaxEventsPerCluster, log: cfg.Logger}, nil
}

// migratePostgres migrates under a session advisory lock, on one connection.
func migratePostgres(ctx context.Context, db *sql.DB, cfg Config) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, migrationLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, migrationLockKey); uerr != nil {
			err = errors.Join(err, fmt.Errorf("release the migration lock: %w", uerr))
		}
	}()
	_, err = migrate(ctx, conn, postgresDialect, migrations(), cfg.Logger)
	return err
}

// pgRetryable tells whether a transaction failed on a serialization conflict or a
// deadlock, and may run again.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgUniqueViolation tells whether err is a unique violation, and of which constraint.
func pgUniqueViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// rebindConnector makes pgx's connections accept the store's SQL, written with ?
// placeholders, by numbering them ($1, $2, …) as PostgreSQL wants.
type rebindConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

// rebindConn is a pgx connection whose queries are rebound; every other method is
// pgx's.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind numbers the ? placeholders of query outside quotes: $1, $2, ….
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}
