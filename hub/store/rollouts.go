package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Rollouts holds rollout runs, the leases of single-process work, and the events
// the hub itself records.
type Rollouts interface {
	// CreateRollout stores a new run (its Generation must be 1). An active run of
	// the same app is an *ActiveRolloutError.
	CreateRollout(ctx context.Context, r *apiv1.Rollout) error
	// UpdateRollout stores r over the stored run whose generation is
	// r.Generation-1; ErrStaleRollout when the stored one moved on, ErrNotFound
	// when there is none.
	UpdateRollout(ctx context.Context, r *apiv1.Rollout) error
	// GetRollout returns a run; ErrNotFound if there is none.
	GetRollout(ctx context.Context, id string) (*apiv1.Rollout, error)
	// ListRollouts returns the runs q selects, newest first.
	ListRollouts(ctx context.Context, q RolloutQuery) ([]apiv1.Rollout, error)
	// AcquireLease takes the lease name for holder until now+ttl, or renews it when
	// holder has it; false when another holder has it and it has not expired.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// AddEvents records events the hub itself derives (rollouts); their IDs are
	// assigned by the store.
	AddEvents(ctx context.Context, events []apiv1.Event) error
}

// RolloutQuery selects runs; empty fields match everything.
type RolloutQuery struct {
	// App selects one app.
	App string
	// Active selects only the runs that hold their clusters.
	Active bool
	// Limit is the most runs returned; 0 means DefaultRolloutLimit.
	Limit int
}

// DefaultRolloutLimit is RolloutQuery.Limit when unset, and its maximum.
const DefaultRolloutLimit = 100

// ErrStaleRollout is returned by UpdateRollout when the stored run changed since
// it was read.
var ErrStaleRollout = errors.New("the rollout changed since it was read")

// ActiveRolloutError is returned by CreateRollout when the app has an active run.
type ActiveRolloutError struct {
	// App is the app.
	App string
	// ID is the active run.
	ID string
}

func (e *ActiveRolloutError) Error() string {
	return fmt.Sprintf("app %s has an active rollout, %s", e.App, e.ID)
}

// CreateRollout stores a new run.
func (s *SQLite) CreateRollout(ctx context.Context, r *apiv1.Rollout) error {
	if r.Generation != 1 {
		return fmt.Errorf("create rollout %s: generation %d, want 1", r.ID, r.Generation)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rollout %s: %w", r.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM rollouts WHERE app = ? AND active = 1`, r.App).Scan(&other)
		switch {
		case err == nil:
			return &ActiveRolloutError{App: r.App, ID: other}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("look for an active rollout of %s: %w", r.App, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rollouts (id, app, state, active, generation, created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.App, string(r.State), boolInt(r.State.Active()), r.Generation, toNanos(r.CreatedAt), doc)
		if err != nil {
			return fmt.Errorf("insert rollout %s: %w", r.ID, err)
		}
		return nil
	})
}

// UpdateRollout stores r if the stored run is at generation r.Generation-1.
func (s *SQLite) UpdateRollout(ctx context.Context, r *apiv1.Rollout) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rollout %s: %w", r.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rollouts SET state = ?, active = ?, generation = ?, doc = ? WHERE id = ? AND generation = ?`,
			string(r.State), boolInt(r.State.Active()), r.Generation, doc, r.ID, r.Generation-1)
		if err != nil {
			return fmt.Errorf("update rollout %s: %w", r.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var gen int64
		err = tx.QueryRowContext(ctx, `SELECT generation FROM rollouts WHERE id = ?`, r.ID).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("rollout %s: %w", r.ID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read rollout %s: %w", r.ID, err)
		}
		return fmt.Errorf("rollout %s at generation %d, not %d: %w", r.ID, gen, r.Generation-1, ErrStaleRollout)
	})
}

// GetRollout returns a run.
func (s *SQLite) GetRollout(ctx context.Context, id string) (*apiv1.Rollout, error) {
	var doc []byte
	err := s.r.QueryRowContext(ctx, `SELECT doc FROM rollouts WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read rollout %s: %w", id, err)
	}
	var r apiv1.Rollout
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, fmt.Errorf("decode rollout %s: %w", id, err)
	}
	return &r, nil
}

// ListRollouts returns the runs q selects, newest first.
func (s *SQLite) ListRollouts(ctx context.Context, q RolloutQuery) ([]apiv1.Rollout, error) {
	var w where
	w.add("app = ?", q.App, q.App != "")
	w.add("active = ?", 1, q.Active)
	limit := q.Limit
	if limit <= 0 || limit > DefaultRolloutLimit {
		limit = DefaultRolloutLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM rollouts`+w.String()+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	out := []apiv1.Rollout{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		var r apiv1.Rollout
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode a rollout: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AcquireLease takes or renews a lease.
func (s *SQLite) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if strings.TrimSpace(holder) == "" || ttl <= 0 {
		return false, fmt.Errorf("lease %s: a holder and a positive ttl are required", name)
	}
	var got bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
			name, holder, toNanos(now.Add(ttl)), toNanos(now))
		if err != nil {
			return fmt.Errorf("lease %s: %w", name, err)
		}
		n, err := res.RowsAffected()
		got = n == 1
		return err
	})
	return got, err
}

// ReleaseLease gives a lease up.
func (s *SQLite) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
			return fmt.Errorf("release lease %s: %w", name, err)
		}
		return nil
	})
}

// AddEvents records events.
func (s *SQLite) AddEvents(ctx context.Context, events []apiv1.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, sqlInsertEvent, e.Cluster, e.App, string(e.Type), toNanos(e.Time), e.Revision,
				e.Version, string(e.Phase), string(e.Health), e.Message, e.Drifted, e.DurationMs); err != nil {
				return fmt.Errorf("record event: %w", err)
			}
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
