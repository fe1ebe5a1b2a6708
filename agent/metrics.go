package agent

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/outpost-gitops/outpost/agent/hubclient"
)

// metrics are the agent's instruments (exposed on /metrics as outpost_agent_*).
type metrics struct {
	syncDuration metric.Float64Histogram
	applied      metric.Int64Counter
	pruned       metric.Int64Counter
	syncErrors   metric.Int64Counter
	driftEvents  metric.Int64Counter
	lastSuccess  atomic.Int64 // Unix seconds
	drifted      atomic.Int64 // objects currently drifted
}

func newMetrics(m metric.Meter, hub *hubclient.Client) (*metrics, error) {
	x := &metrics{}
	var err error
	if x.syncDuration, err = m.Float64Histogram("outpost_agent_sync_duration_seconds",
		metric.WithDescription("Duration of a sync cycle of the cluster"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)); err != nil {
		return nil, err
	}
	if x.applied, err = m.Int64Counter("outpost_agent_objects_applied", metric.WithDescription("Objects created, configured or recreated")); err != nil {
		return nil, err
	}
	if x.pruned, err = m.Int64Counter("outpost_agent_objects_pruned", metric.WithDescription("Objects pruned because they left Git")); err != nil {
		return nil, err
	}
	if x.syncErrors, err = m.Int64Counter("outpost_agent_sync_errors", metric.WithDescription("App syncs that failed")); err != nil {
		return nil, err
	}
	if x.driftEvents, err = m.Int64Counter("outpost_agent_drift_events", metric.WithDescription("Changes of an object's drift state")); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("outpost_agent_drifted_objects", metric.WithDescription("Managed objects currently drifted"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(x.drifted.Load()); return nil })); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("outpost_agent_last_success_timestamp_seconds", metric.WithDescription("When the last fully successful sync ended"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(x.lastSuccess.Load()); return nil })); err != nil {
		return nil, err
	}
	if hub != nil {
		if _, err = m.Int64ObservableGauge("outpost_agent_report_queue_length", metric.WithDescription("Apps whose newest state the hub has not accepted yet"),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(int64(hub.Len())); return nil })); err != nil {
			return nil, err
		}
	}
	return x, nil
}
