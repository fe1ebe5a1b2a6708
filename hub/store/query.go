package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// where builds a WHERE clause from the conditions whose value is set.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any, set bool) {
	if set {
		w.conds = append(w.conds, cond)
		w.args = append(w.args, arg)
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Status returns the full status and drift of the apps matching q, sorted by cluster
// and app.
func (s *DB) Status(ctx context.Context, q StatusQuery) ([]AppRecord, error) {
	var w where
	w.add("cluster = ?", q.Cluster, q.Cluster != "")
	w.add("app = ?", q.App, q.App != "")
	var sw where
	sw.add("s.cluster = ?", q.Cluster, q.Cluster != "")
	sw.add("s.app = ?", q.App, q.App != "")

	// One read transaction, so status and drift come from the same snapshot.
	tx, err := s.r.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: ends the snapshot, nothing to undo

	rows, err := tx.QueryContext(ctx, `SELECT s.cluster, s.received_at, d.status FROM app_status s
		JOIN app_status_doc d ON d.cluster = s.cluster AND d.app = s.app`+sw.String()+` ORDER BY s.cluster, s.app`, sw.args...)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var out []AppRecord
	index := map[string]int{}
	for rows.Next() {
		var (
			rec      AppRecord
			received int64
			status   []byte
		)
		if err := rows.Scan(&rec.Cluster, &received, &status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read status: %w", err)
		}
		if err := json.Unmarshal(status, &rec.Status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decode status of %s/%s: %w", rec.Cluster, rec.Status.App, err)
		}
		rec.ReceivedAt = fromNanos(received)
		index[rec.Cluster+"/"+rec.Status.App] = len(out)
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("read status: %w", err)
	}
	rows.Close()

	drows, err := tx.QueryContext(ctx, `SELECT cluster, app, object, drift FROM drift`+w.String()+` ORDER BY cluster, app, object`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("read drift: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var (
			cluster, app, key string
			b                 []byte
			d                 apiv1.Drift
		)
		if err := drows.Scan(&cluster, &app, &key, &b); err != nil {
			return nil, fmt.Errorf("read drift: %w", err)
		}
		i, ok := index[cluster+"/"+app]
		if !ok {
			continue // drift without status cannot be written; skip rather than fail
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("decode drift of %s/%s %s: %w", cluster, app, key, err)
		}
		out[i].Drift = append(out[i].Drift, d)
	}
	if err := drows.Err(); err != nil {
		return nil, fmt.Errorf("read drift: %w", err)
	}
	return out, nil
}

// AppSummaries returns the key columns of every app of a cluster ("" for all), sorted
// by cluster and app.
func (s *DB) AppSummaries(ctx context.Context, cluster string) ([]AppSummary, error) {
	var w where
	w.add("cluster = ?", cluster, cluster != "")
	rows, err := s.r.QueryContext(ctx, `SELECT cluster, app, version, revision, phase, health, drifted, last_synced, received_at
		FROM app_status`+w.String()+` ORDER BY cluster, app`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("read app summaries: %w", err)
	}
	defer rows.Close()
	var out []AppSummary
	for rows.Next() {
		var (
			a                  AppSummary
			phase, health      string
			synced, receivedAt int64
		)
		if err := rows.Scan(&a.Cluster, &a.App, &a.Version, &a.Revision, &phase, &health, &a.Drifted, &synced, &receivedAt); err != nil {
			return nil, fmt.Errorf("read app summaries: %w", err)
		}
		a.Phase, a.Health = apiv1.Phase(phase), apiv1.HealthStatus(health)
		a.LastSyncedAt, a.ReceivedAt = fromNanos(synced), fromNanos(receivedAt)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read app summaries: %w", err)
	}
	return out, nil
}

// ClusterSummaries counts the apps of every cluster that has some (Removed apps left
// out), by cluster name.
func (s *DB) ClusterSummaries(ctx context.Context) (map[string]apiv1.ClusterSummary, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT cluster, COUNT(*),
		COUNT(CASE WHEN phase = 'Synced' THEN 1 END), COUNT(CASE WHEN phase IN ('Syncing', 'Pending') THEN 1 END),
		COUNT(CASE WHEN phase IN ('Failed', 'SourceUnavailable') THEN 1 END),
		COUNT(CASE WHEN health = 'Current' THEN 1 END), COUNT(CASE WHEN health IN ('Failed', 'Timeout') THEN 1 END),
		COUNT(CASE WHEN drifted > 0 THEN 1 END)
		FROM app_status WHERE phase != 'Removed' GROUP BY cluster`)
	if err != nil {
		return nil, fmt.Errorf("summarise clusters: %w", err)
	}
	defer rows.Close()
	out := map[string]apiv1.ClusterSummary{}
	for rows.Next() {
		var (
			name string
			c    apiv1.ClusterSummary
		)
		if err := rows.Scan(&name, &c.Apps, &c.Synced, &c.Syncing, &c.Failed, &c.Healthy, &c.Unhealthy, &c.Drifted); err != nil {
			return nil, fmt.Errorf("summarise clusters: %w", err)
		}
		out[name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarise clusters: %w", err)
	}
	return out, nil
}

// Events returns the events matching q, newest first.
func (s *DB) Events(ctx context.Context, q EventQuery) ([]apiv1.Event, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultEventLimit
	case limit > apiv1.MaxHistoryLimit:
		limit = apiv1.MaxHistoryLimit
	}
	var w where
	w.add("cluster = ?", q.Cluster, q.Cluster != "")
	w.add("app = ?", q.App, q.App != "")
	w.add("type = ?", string(q.Type), q.Type != "")
	w.add("id < ?", q.BeforeID, q.BeforeID > 0)
	rows, err := s.r.QueryContext(ctx, `SELECT id, cluster, app, type, time, revision, version, phase, health, message, drifted, duration_ms
		FROM events`+w.String()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []apiv1.Event
	for rows.Next() {
		var (
			e                  apiv1.Event
			typ, phase, health string
			at                 int64
		)
		if err := rows.Scan(&e.ID, &e.Cluster, &e.App, &typ, &at, &e.Revision, &e.Version, &phase, &health, &e.Message, &e.Drifted, &e.DurationMs); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.Type, e.Phase, e.Health = apiv1.EventType(typ), apiv1.Phase(phase), apiv1.HealthStatus(health)
		e.Time = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
