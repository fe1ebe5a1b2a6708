package store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults of Config, in one place.
const (
	// DefaultMaxEventsPerCluster is Config.MaxEventsPerCluster when unset.
	DefaultMaxEventsPerCluster = 1000
	// DefaultBusyTimeout is Config.BusyTimeout when unset.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultReaders is Config.Readers when unset.
	DefaultReaders = 4
	// DefaultEventLimit is the number of events returned when EventQuery.Limit is 0.
	DefaultEventLimit = 100
	// DefaultMaxConns is Config.MaxConns when unset.
	DefaultMaxConns = 20
)

// Config configures the store: SQLite (Path) or PostgreSQL (DSN).
type Config struct {
	// Path is the SQLite database file, created if missing (its directory must exist).
	// SQLite also keeps Path-wal and Path-shm next to it. Unused with DSN.
	Path string
	// DSN, when set, puts the store in this PostgreSQL database instead
	// (postgres://user:password@host:port/db?sslmode=… or "key=value" pairs); several
	// hub replicas may share it. It may hold a password: it never appears in errors.
	DSN string
	// MaxConns bounds the PostgreSQL connections of this process; default
	// DefaultMaxConns. Unused with SQLite.
	MaxConns int
	// MaxEventsPerCluster is how many events are kept per cluster, the newest; default
	// DefaultMaxEventsPerCluster.
	MaxEventsPerCluster int
	// BusyTimeout is how long a connection waits for a lock another holds; default
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Readers is the number of read-only connections; default DefaultReaders.
	Readers int
	// Logger receives migration logs; default: discard.
	Logger *slog.Logger
}

// withDefaults returns c with every unset field set to its default, or an error
// naming the invalid field.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.DSN != "" && c.Path != "":
		return c, errors.New("store config: Path and DSN are both set: one store is SQLite (Path) or PostgreSQL (DSN)")
	case c.DSN == "" && c.Path == "":
		return c, errors.New("store config: Path is empty")
	case c.MaxConns < 0:
		return c, fmt.Errorf("store config: MaxConns %d is negative", c.MaxConns)
	case c.DSN == "" && (strings.ContainsAny(c.Path, "?#") || strings.HasPrefix(c.Path, "file:")):
		return c, fmt.Errorf("store config: Path %q must be a plain file name (no '?', '#' or file: prefix)", c.Path)
	case c.MaxEventsPerCluster < 0:
		return c, fmt.Errorf("store config: MaxEventsPerCluster %d is negative", c.MaxEventsPerCluster)
	case c.BusyTimeout < 0:
		return c, fmt.Errorf("store config: BusyTimeout %s is negative", c.BusyTimeout)
	case c.Readers < 0:
		return c, fmt.Errorf("store config: Readers %d is negative", c.Readers)
	}
	if c.MaxEventsPerCluster == 0 {
		c.MaxEventsPerCluster = DefaultMaxEventsPerCluster
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.Readers == 0 {
		c.Readers = DefaultReaders
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
