package ha

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Singleton runs work that must happen on one replica at a time.
type Singleton interface {
	// Run calls work whenever this replica holds the lease called name, with a context
	// that ends when the lease is lost or ctx ends; work should return then. When work
	// returns with the lease still held, Run releases the lease and competes for it
	// again. Run returns when ctx ends.
	Run(ctx context.Context, name string, work func(ctx context.Context)) error
	// Hold takes the lease called name now, if it is free, for as long as the returned
	// context lives: it ends when the lease is lost or ctx ends. held is false when
	// another replica holds it.
	Hold(ctx context.Context, name string) (leaseCtx context.Context, release func(), held bool, err error)
}

// Local is the Singleton of a hub that runs alone: every lease is always held.
type Local struct{}

var _ Singleton = Local{}

// Run calls work until ctx ends (again, a TryInterval after it returns).
func (Local) Run(ctx context.Context, _ string, work func(ctx context.Context)) error {
	for {
		work(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(DefaultTryInterval):
		}
	}
}

// Hold holds the lease until ctx ends or release.
func (Local) Hold(ctx context.Context, _ string) (context.Context, func(), bool, error) {
	c, cancel := context.WithCancel(ctx)
	return c, cancel, true, nil
}

// Defaults of Config, in one place.
const (
	// DefaultTryInterval is Config.TryInterval when unset.
	DefaultTryInterval = time.Second
	// DefaultCheckInterval is Config.CheckInterval when unset.
	DefaultCheckInterval = time.Second
	// DefaultDeadAfter is Config.DeadAfter when unset.
	DefaultDeadAfter = 10 * time.Second
)

// Config configures Leases and Bus.
type Config struct {
	// DSN is the PostgreSQL database shared by the replicas (store.Config.DSN).
	DSN string
	// TryInterval is how often a replica tries to take a lease another holds: the
	// takeover time after the holder's process died. Default DefaultTryInterval.
	TryInterval time.Duration
	// CheckInterval is how often the holder checks its lease's connection; a failed
	// check ends the lease. Default DefaultCheckInterval.
	CheckInterval time.Duration
	// DeadAfter is about how long the server keeps the lease of a holder that went
	// silent (node or network lost), through TCP keepalives and the user timeout of
	// its session. Default DefaultDeadAfter.
	DeadAfter time.Duration
	// Logger receives lease changes; default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, *pgx.ConnConfig, error) {
	if c.TryInterval <= 0 {
		c.TryInterval = DefaultTryInterval
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	cc, err := pgx.ParseConfig(c.DSN)
	if err != nil {
		return c, nil, fmt.Errorf("ha: PostgreSQL DSN: %w", err) // pgconn redacts the password
	}
	// The server notices a silent peer after idle + interval × count, and an
	// unacknowledged write after the user timeout.
	idle := max(1, int(c.DeadAfter.Seconds()/2))
	cc.RuntimeParams["tcp_keepalives_idle"] = strconv.Itoa(idle)
	cc.RuntimeParams["tcp_keepalives_interval"] = strconv.Itoa(max(1, idle/3))
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	cc.RuntimeParams["tcp_user_timeout"] = strconv.FormatInt(c.DeadAfter.Milliseconds(), 10)
	cc.RuntimeParams["application_name"] = "outpost-hub"
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 5 * time.Second
	}
	return c, cc, nil
}

// Leases is the Singleton of replicas sharing a PostgreSQL database: see the package
// documentation.
type Leases struct {
	cfg Config
	cc  *pgx.ConnConfig
}

var _ Singleton = (*Leases)(nil)

// NewLeases returns the leases of the replicas on cfg.DSN; it connects on use.
func NewLeases(cfg Config) (*Leases, error) {
	cfg, cc, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Leases{cfg: cfg, cc: cc}, nil
}

// Key returns the advisory lock key of a lease name.
func Key(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("outpost/lease/" + name))
	return int64(h.Sum64())
}

// Run implements Singleton. While another replica holds the lease it keeps one
// connection to try again on, every TryInterval.
func (l *Leases) Run(ctx context.Context, name string, work func(ctx context.Context)) error {
	log := l.cfg.Logger.With("lease", name)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	for {
		var err error
		if conn == nil {
			conn, err = pgx.ConnectConfig(ctx, l.cc)
			if err != nil {
				conn = nil
				err = fmt.Errorf("connect: %w", err)
			}
		}
		if conn != nil {
			var leaseCtx context.Context
			var release func()
			var held bool
			leaseCtx, release, held, err = l.holdOn(ctx, conn, name)
			switch {
			case err != nil:
				closeConn(conn)
				conn = nil
			case held:
				conn = nil // the lease's now: release closes it
				log.Info("took the lease")
				work(leaseCtx)
				lost := leaseCtx.Err() != nil && ctx.Err() == nil
				release()
				if lost {
					log.Warn("lost the lease", "cause", context.Cause(leaseCtx))
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("take the lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.TryInterval):
		}
	}
}

// closeConn ends a session, which frees its advisory locks.
func closeConn(conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}

// Hold implements Singleton: it connects and tries the advisory lock once.
func (l *Leases) Hold(ctx context.Context, name string) (context.Context, func(), bool, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cc)
	if err != nil {
		return nil, nil, false, fmt.Errorf("lease %q: connect: %w", name, err)
	}
	leaseCtx, release, held, err := l.holdOn(ctx, conn, name)
	if err != nil || !held {
		closeConn(conn)
	}
	return leaseCtx, release, held, err
}

// holdOn tries the advisory lock once on conn. Held, conn is the lease's: a goroutine
// pings it every CheckInterval, ending the lease at the first failure, and release
// (or the end of ctx) closes it. Not held, conn stays the caller's.
func (l *Leases) holdOn(ctx context.Context, conn *pgx.Conn, name string) (context.Context, func(), bool, error) {
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, Key(name)).Scan(&held); err != nil {
		return nil, nil, false, fmt.Errorf("lease %q: %w", name, err)
	}
	if !held {
		return nil, nil, false, nil
	}
	leaseCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer closeConn(conn)
		t := time.NewTicker(l.cfg.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-leaseCtx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(leaseCtx, l.cfg.CheckInterval)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && leaseCtx.Err() == nil {
				cancel(fmt.Errorf("lease %q lost: its connection failed: %w", name, err))
				return
			}
		}
	}()
	release := func() {
		cancel(errors.New("lease released"))
		<-done
	}
	return leaseCtx, release, true, nil
}
