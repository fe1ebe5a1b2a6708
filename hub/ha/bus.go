package ha

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// HeadChannel is the PostgreSQL notification channel of Git heads.
const HeadChannel = "outpost_head"

// Bus carries Git heads between the replicas: see the package documentation.
type Bus struct {
	cfg Config
	cc  *pgx.ConnConfig

	mu   sync.Mutex
	conn *pgx.Conn // Publish's connection; nil until used or after a failure
}

// NewBus returns the bus of the replicas on cfg.DSN; it connects on use.
func NewBus(cfg Config) (*Bus, error) {
	cfg, cc, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Bus{cfg: cfg, cc: cc}, nil
}

// Connect opens Publish's connection ahead of the first Publish, which then need not
// wait for it.
func (b *Bus) Connect(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		return nil
	}
	c, err := pgx.ConnectConfig(ctx, b.cc)
	if err != nil {
		return fmt.Errorf("connect the head bus: %w", err)
	}
	b.conn = c
	return nil
}

// Publish tells every replica listening (this one too) that rev is the head.
func (b *Bus) Publish(ctx context.Context, rev string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if b.conn == nil {
			c, err := pgx.ConnectConfig(ctx, b.cc)
			if err != nil {
				return fmt.Errorf("publish head %s: connect: %w", rev, err)
			}
			b.conn = c
		}
		_, err := b.conn.Exec(ctx, `SELECT pg_notify($1, $2)`, HeadChannel, rev)
		if err == nil {
			return nil
		}
		_ = b.conn.Close(context.WithoutCancel(ctx))
		b.conn = nil
		if attempt == 1 || ctx.Err() != nil {
			return fmt.Errorf("publish head %s: %w", rev, err)
		}
	}
}

// Close closes Publish's connection.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close(context.Background())
	b.conn = nil
	return err
}

// Listen calls fn with every head published, until ctx ends; after each (re)connect
// it calls fn("") first, since heads published meanwhile were missed. ready, when
// not nil, is closed once the first LISTEN is in place.
func (b *Bus) Listen(ctx context.Context, fn func(rev string), ready chan<- struct{}) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, func() {
			backoff = 100 * time.Millisecond
			if ready != nil {
				close(ready)
				ready = nil
			}
			if !first {
				fn("")
			}
			first = false
		}, fn)
		if ctx.Err() != nil {
			return
		}
		b.cfg.Logger.Warn("listen for Git heads of other replicas; reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (b *Bus) listenOnce(ctx context.Context, listening func(), fn func(string)) error {
	conn, err := pgx.ConnectConfig(ctx, b.cc)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+HeadChannel); err != nil {
		return err
	}
	listening()
	for {
		// Wake up now and then to check the connection: a dead peer sends no
		// notification and may not close the socket.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			pctx, pcancel := context.WithTimeout(ctx, b.cfg.CheckInterval*3)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
