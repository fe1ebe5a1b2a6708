package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// clusterColumns are the columns scanCluster reads, in order.
const clusterColumns = `name, labels, token_hash, created_at, last_report_at, agent_id, agent_pod, agent_version`

// RegisterCluster adds a cluster; a *ConflictError if its name (or token hash) is taken.
func (s *DB) RegisterCluster(ctx context.Context, c NewCluster) (Cluster, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	labels, err := json.Marshal(nonNil(c.Labels))
	if err != nil {
		return Cluster{}, fmt.Errorf("register cluster %q: labels: %w", c.Name, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clusters WHERE name = ?`, c.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Cluster: c.Name, Reason: "a cluster of that name is registered"}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clusters WHERE token_hash = ?`, c.TokenHash[:]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Cluster: c.Name, Reason: "its token is in use"}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO clusters (name, labels, token_hash, created_at) VALUES (?, ?, ?, ?)`,
			c.Name, labels, c.TokenHash[:], c.CreatedAt.UnixNano())
		return err
	})
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return Cluster{}, conflict
	}
	if s.d.conflict != nil {
		// Another replica registered the name (or token) between the check and the insert.
		if constraint, ok := s.d.conflict(err); ok {
			if strings.Contains(constraint, "token") {
				return Cluster{}, &ConflictError{Cluster: c.Name, Reason: "its token is in use"}
			}
			return Cluster{}, &ConflictError{Cluster: c.Name, Reason: "a cluster of that name is registered"}
		}
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("register cluster %q: %w", c.Name, err)
	}
	return Cluster{Name: c.Name, Labels: c.Labels, TokenHash: c.TokenHash, CreatedAt: fromNanos(c.CreatedAt.UnixNano())}, nil
}

// DeleteCluster removes a cluster with its status, drift and events.
func (s *DB) DeleteCluster(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clusters WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		for _, table := range []string{"app_status", "app_status_doc", "drift", "events"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE cluster = ?`, name); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete cluster %q: %w", name, err)
	}
	return nil
}

// GetCluster returns a cluster; ErrNotFound if there is none.
func (s *DB) GetCluster(ctx context.Context, name string) (Cluster, error) {
	c, err := scanCluster(s.r.QueryRowContext(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE name = ?`, name))
	if err != nil {
		return Cluster{}, fmt.Errorf("get cluster %q: %w", name, err)
	}
	return c, nil
}

// LookupToken returns the cluster whose token has this hash; ErrNotFound if none. The
// lookup goes through an index on the hash: what it could leak by timing is a prefix of
// the SHA-256 of a 128-bit random token, which reveals nothing of the token.
//
// A previous token in its grace period (RotateToken) is found too: the returned
// Cluster's TokenHash is then the hash asked for.
func (s *DB) LookupToken(ctx context.Context, hash TokenHash) (Cluster, error) {
	c, err := scanCluster(s.r.QueryRowContext(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE token_hash = ?`, hash[:]))
	if errors.Is(err, ErrNotFound) {
		c, err = scanCluster(s.r.QueryRowContext(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE old_token_hash = ? AND old_token_expires > ?`,
			hash[:], time.Now().UnixNano()))
		c.TokenHash = hash
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("look up agent token: %w", err)
	}
	return c, nil
}

// RotateToken replaces a cluster's token hash; the previous one is accepted until
// graceUntil.
func (s *DB) RotateToken(ctx context.Context, name string, newHash TokenHash, graceUntil time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clusters WHERE token_hash = ? OR old_token_hash = ?`, newHash[:], newHash[:]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &ConflictError{Cluster: name, Reason: "its token is in use"}
		}
		res, err := tx.ExecContext(ctx, `UPDATE clusters SET old_token_hash = token_hash, old_token_expires = ?, token_hash = ? WHERE name = ?`,
			max(graceUntil.UnixNano(), 0), newHash[:], name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rotate the token of cluster %q: %w", name, err)
	}
	return nil
}

// ListClusters returns every cluster, sorted by name.
func (s *DB) ListClusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+clusterColumns+` FROM clusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanCluster reads the clusterColumns of one row; ErrNotFound if there is none.
func scanCluster(row scanner) (Cluster, error) {
	var (
		c                   Cluster
		labels, hash        []byte
		created, lastReport int64
	)
	err := row.Scan(&c.Name, &labels, &hash, &created, &lastReport, &c.Agent.ID, &c.Agent.Pod, &c.Agent.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, ErrNotFound
	}
	if err != nil {
		return Cluster{}, err
	}
	if err := json.Unmarshal(labels, &c.Labels); err != nil {
		return Cluster{}, fmt.Errorf("cluster %q: labels: %w", c.Name, err)
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	if len(hash) != len(c.TokenHash) {
		return Cluster{}, fmt.Errorf("cluster %q: token hash has %d bytes", c.Name, len(hash))
	}
	copy(c.TokenHash[:], hash)
	c.CreatedAt = fromNanos(created)
	c.LastReportAt = fromNanos(lastReport)
	return c, nil
}

// fromNanos converts stored Unix nanoseconds to a UTC time; 0 is the zero time.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// toNanos converts a time to Unix nanoseconds; the zero time is 0.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
