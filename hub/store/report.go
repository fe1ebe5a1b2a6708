package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// SQL of the report path, prepared once on the writer connection (preparing is most of
// the cost of these small statements).
const (
	sqlTouchCluster = `UPDATE clusters SET last_report_at = ?, agent_id = ?, agent_pod = ?, agent_version = ? WHERE name = ?`
	sqlReadStatus   = `SELECT s.epoch, s.seq, s.drifted, d.status FROM app_status s
		JOIN app_status_doc d ON d.cluster = s.cluster AND d.app = s.app WHERE s.cluster = ? AND s.app = ?`
	sqlUpsertStatus = `INSERT INTO app_status
		(cluster, app, epoch, seq, version, revision, phase, health, drifted, last_synced, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (cluster, app) DO UPDATE SET
		epoch = excluded.epoch, seq = excluded.seq, version = excluded.version, revision = excluded.revision,
		phase = excluded.phase, health = excluded.health, drifted = excluded.drifted,
		last_synced = excluded.last_synced, received_at = excluded.received_at`
	sqlUpsertDoc = `INSERT INTO app_status_doc (cluster, app, status) VALUES (?, ?, ?)
		ON CONFLICT (cluster, app) DO UPDATE SET status = excluded.status`
	sqlReadDrift   = `SELECT object, drift FROM drift WHERE cluster = ? AND app = ? ORDER BY object`
	sqlDeleteDrift = `DELETE FROM drift WHERE cluster = ? AND app = ? AND object = ?`
	sqlUpsertDrift = `INSERT INTO drift (cluster, app, object, drift) VALUES (?, ?, ?, ?)
		ON CONFLICT (cluster, app, object) DO UPDATE SET drift = excluded.drift`
	sqlInsertEvent = `INSERT INTO events
		(cluster, app, type, time, revision, version, phase, health, message, drifted, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlTrimEvents = `DELETE FROM events WHERE cluster = ? AND id <= (
		SELECT id FROM events WHERE cluster = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`
)

// reportStmts are the prepared statements of the report path.
type reportStmts struct {
	touchCluster, readStatus, upsertStatus, upsertDoc, readDrift, deleteDrift, upsertDrift, insertEvent, trimEvents *sql.Stmt
}

// prepareReportStmts prepares the report path's statements on db.
func prepareReportStmts(ctx context.Context, db *sql.DB) (*reportStmts, error) {
	st := &reportStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.touchCluster, sqlTouchCluster}, {&st.readStatus, sqlReadStatus}, {&st.upsertStatus, sqlUpsertStatus}, {&st.upsertDoc, sqlUpsertDoc},
		{&st.readDrift, sqlReadDrift}, {&st.deleteDrift, sqlDeleteDrift}, {&st.upsertDrift, sqlUpsertDrift},
		{&st.insertEvent, sqlInsertEvent}, {&st.trimEvents, sqlTrimEvents},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare %q: %w", p.sql, err), st.Close())
		}
		*p.dst = stmt
	}
	return st, nil
}

// Close closes the statements prepared so far.
func (st *reportStmts) Close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.touchCluster, st.readStatus, st.upsertStatus, st.upsertDoc, st.readDrift, st.deleteDrift, st.upsertDrift, st.insertEvent, st.trimEvents} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}

// reportTx is one report's write transaction.
type reportTx struct {
	ctx context.Context
	tx  *sql.Tx
	st  *reportStmts
}

func (t *reportTx) exec(stmt *sql.Stmt, args ...any) (sql.Result, error) {
	return t.tx.StmtContext(t.ctx, stmt).ExecContext(t.ctx, args...)
}

func (t *reportTx) queryRow(stmt *sql.Stmt, args ...any) *sql.Row {
	return t.tx.StmtContext(t.ctx, stmt).QueryRowContext(t.ctx, args...)
}

func (t *reportTx) query(stmt *sql.Stmt, args ...any) (*sql.Rows, error) {
	return t.tx.StmtContext(t.ctx, stmt).QueryContext(t.ctx, args...)
}

// ApplyReport stores a validated report received at receivedAt: see the package doc
// for the rules. It returns ErrNotFound (wrapped) if the cluster is not registered.
func (s *DB) ApplyReport(ctx context.Context, r *apiv1.StatusReport, receivedAt time.Time) (ReportResult, error) {
	var (
		res ReportResult
		err error
	)
	if s.batch != nil {
		res, err = s.batch.submit(ctx, s, r, receivedAt)
	} else {
		res, err = s.applyReportAlone(ctx, r, receivedAt)
	}
	if err != nil {
		return ReportResult{}, fmt.Errorf("store report of cluster %q: %w", r.Cluster, err)
	}
	if len(res.Stale) > 0 {
		s.log.DebugContext(ctx, "ignored stale app status", "cluster", r.Cluster, "apps", res.Stale)
	}
	return res, nil
}

// applyReportAlone stores one report in a transaction of its own.
func (s *DB) applyReportAlone(ctx context.Context, r *apiv1.StatusReport, receivedAt time.Time) (ReportResult, error) {
	var res ReportResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.applyReportTx(&reportTx{ctx: ctx, tx: tx, st: s.stmts}, r, receivedAt)
		return err
	})
	return res, err
}

// applyReportTx is ApplyReport's work inside transaction t.
func (s *DB) applyReportTx(t *reportTx, r *apiv1.StatusReport, receivedAt time.Time) (ReportResult, error) {
	var res ReportResult
	driftByApp := make(map[string][]apiv1.Drift)
	for _, d := range r.Drift {
		driftByApp[d.App] = append(driftByApp[d.App], d)
	}
	upd, err := t.exec(t.st.touchCluster, receivedAt.UnixNano(), r.Agent.ID, r.Agent.Pod, r.Agent.Version, r.Cluster)
	if err != nil {
		return res, err
	}
	if n, err := upd.RowsAffected(); err != nil {
		return res, err
	} else if n == 0 {
		return res, ErrNotFound
	}
	for i := range r.Apps {
		a := &r.Apps[i]
		events, stored, err := applyApp(t, r.Cluster, a, driftByApp[a.App], receivedAt)
		if err != nil {
			return res, fmt.Errorf("app %q: %w", a.App, err)
		}
		if !stored {
			res.Stale = append(res.Stale, a.App)
			continue
		}
		res.Stored = append(res.Stored, a.App)
		res.Events += events
	}
	if res.Events > 0 {
		if _, err := t.exec(t.st.trimEvents, r.Cluster, r.Cluster, s.maxEvents); err != nil {
			return res, fmt.Errorf("trim events: %w", err)
		}
	}
	return res, nil
}

// applyApp stores one app's status and drift unless the stored generation is newer or
// equal, and records its events. It returns the number of events and whether the
// status was stored.
func applyApp(t *reportTx, cluster string, next *apiv1.AppStatus, drift []apiv1.Drift, receivedAt time.Time) (int, bool, error) {
	var (
		epoch, seq, drifted int64
		stored              []byte
	)
	err := t.queryRow(t.st.readStatus, cluster, next.App).Scan(&epoch, &seq, &drifted, &stored)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("read status: %w", err)
	}
	// A stored epoch beyond the clock plus the allowed skew (written before the hub
	// bounded epochs) orders before every real report instead of freezing the app.
	future := epoch > receivedAt.Add(apiv1.MaxEpochSkew).UnixMilli()
	if found && !future && next.Generation.Compare(apiv1.Generation{Epoch: epoch, Sequence: seq}) <= 0 {
		return 0, false, nil
	}

	if next.Phase == apiv1.PhaseRemoved {
		drift = nil
	}
	drift = sortedDrift(drift)
	newDrift := make(map[string][]byte, len(drift))
	for _, d := range drift {
		b, err := json.Marshal(d)
		if err != nil {
			return 0, false, fmt.Errorf("encode drift of %s: %w", d.Object, err)
		}
		newDrift[objectKey(d.Object)] = b
	}

	var prev *appState
	oldDrift := map[string][]byte{}
	if found {
		prev = &appState{}
		if err := json.Unmarshal(stored, &prev.status); err != nil {
			return 0, false, fmt.Errorf("decode stored status: %w", err)
		}
		if drifted > 0 {
			if oldDrift, prev.drift, err = loadDrift(t, cluster, next.App); err != nil {
				return 0, false, err
			}
		}
	}

	status, err := json.Marshal(next)
	if err != nil {
		return 0, false, fmt.Errorf("encode status: %w", err)
	}
	if _, err := t.exec(t.st.upsertStatus, cluster, next.App, next.Generation.Epoch, next.Generation.Sequence, next.Version, next.Revision,
		string(next.Phase), string(next.Health.Status), len(drift), toNanos(next.LastSyncedAt), receivedAt.UnixNano(),
	); err != nil {
		return 0, false, fmt.Errorf("write status: %w", err)
	}
	if _, err := t.exec(t.st.upsertDoc, cluster, next.App, status); err != nil {
		return 0, false, fmt.Errorf("write status: %w", err)
	}
	if !sameDrift(oldDrift, newDrift) {
		if err := replaceDrift(t, cluster, next.App, oldDrift, newDrift); err != nil {
			return 0, false, err
		}
	}

	events := deriveEvents(prev, appState{status: *next, drift: drift})
	for _, e := range events {
		if _, err := t.exec(t.st.insertEvent, cluster, e.App, string(e.Type), receivedAt.UnixNano(), e.Revision, e.Version, string(e.Phase),
			string(e.Health), e.Message, e.Drifted, e.DurationMs,
		); err != nil {
			return 0, false, fmt.Errorf("record %s event: %w", e.Type, err)
		}
	}
	return len(events), true, nil
}

// loadDrift reads an app's stored drift rows, raw by object key and decoded in key
// order.
func loadDrift(t *reportTx, cluster, app string) (map[string][]byte, []apiv1.Drift, error) {
	rows, err := t.query(t.st.readDrift, cluster, app)
	if err != nil {
		return nil, nil, fmt.Errorf("read drift: %w", err)
	}
	defer rows.Close()
	raw := map[string][]byte{}
	var out []apiv1.Drift
	for rows.Next() {
		var (
			key string
			b   []byte
			d   apiv1.Drift
		)
		if err := rows.Scan(&key, &b); err != nil {
			return nil, nil, fmt.Errorf("read drift: %w", err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, nil, fmt.Errorf("decode stored drift of %s: %w", key, err)
		}
		raw[key] = b
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read drift: %w", err)
	}
	return raw, out, nil
}

// replaceDrift makes the app's drift rows newDrift, touching only the rows that differ.
func replaceDrift(t *reportTx, cluster, app string, oldDrift, newDrift map[string][]byte) error {
	for key := range oldDrift {
		if _, ok := newDrift[key]; ok {
			continue
		}
		if _, err := t.exec(t.st.deleteDrift, cluster, app, key); err != nil {
			return fmt.Errorf("clear drift of %s: %w", key, err)
		}
	}
	for key, b := range newDrift {
		if old, ok := oldDrift[key]; ok && bytes.Equal(old, b) {
			continue
		}
		if _, err := t.exec(t.st.upsertDrift, cluster, app, key, b); err != nil {
			return fmt.Errorf("write drift of %s: %w", key, err)
		}
	}
	return nil
}

func sameDrift(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// ForgetApps removes the status and drift of cluster's apps that are stale (events
// stay, bounded per cluster): last reported before staleBefore, or not in desired (nil: none is) and
// last reported before undesiredBefore. It returns the apps removed. An app that left
// apps.yaml, or a name an agent token made up, does not stay in the store for ever.
func (s *DB) ForgetApps(ctx context.Context, cluster string, desired map[string]bool, undesiredBefore, staleBefore time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT app, received_at FROM app_status WHERE cluster = ? AND received_at < ?`,
		cluster, max(undesiredBefore.UnixNano(), staleBefore.UnixNano()))
	if err != nil {
		return nil, fmt.Errorf("forget apps of %q: %w", cluster, err)
	}
	var gone []string
	for rows.Next() {
		var app string
		var at int64
		if err := rows.Scan(&app, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("forget apps of %q: %w", cluster, err)
		}
		if at < staleBefore.UnixNano() || (!desired[app] && at < undesiredBefore.UnixNano()) {
			gone = append(gone, app)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(gone) == 0 {
		return nil, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.lockCluster != "" {
			// Lock the cluster first, as ApplyReport does, so the two never deadlock.
			if _, err := tx.ExecContext(ctx, s.d.lockCluster, cluster); err != nil {
				return fmt.Errorf("lock cluster: %w", err)
			}
		}
		for _, app := range gone {
			for _, table := range []string{"app_status", "app_status_doc", "drift"} {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE cluster = ? AND app = ?`, cluster, app); err != nil {
					return fmt.Errorf("%s: %w", table, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("forget apps of %q: %w", cluster, err)
	}
	return gone, nil
}
