package httpapi

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the API's instruments.
type metrics struct {
	requests metric.Int64Counter
	latency  metric.Float64Histogram
	reports  metric.Int64Counter // apps of reports, by result: stored or stale
	webhooks metric.Int64Counter // webhooks, by provider and result
	commits  metric.Int64Counter // commits made through the API, by operation
}

// newMetrics creates the instruments, and a gauge of the long-polls held now.
func newMetrics(m metric.Meter, waiter Waiter) (*metrics, error) {
	var (
		out metrics
		err error
	)
	if out.requests, err = m.Int64Counter("outpost.hub.http.requests",
		metric.WithDescription("HTTP requests served, by route, method and status")); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.http.requests: %w", err)
	}
	if out.latency, err = m.Float64Histogram("outpost.hub.http.request.duration",
		metric.WithDescription("HTTP request duration, by route (long-polls last up to their hold time)"),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 40, 60)); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.http.request.duration: %w", err)
	}
	if out.reports, err = m.Int64Counter("outpost.hub.report.apps",
		metric.WithDescription("App states received in reports, by result: stored, or stale (an equal or newer generation was stored)")); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.report.apps: %w", err)
	}
	if out.webhooks, err = m.Int64Counter("outpost.hub.webhooks",
		metric.WithDescription("Git webhooks received, by provider and result")); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.webhooks: %w", err)
	}
	if out.commits, err = m.Int64Counter("outpost.hub.commits",
		metric.WithDescription("Commits made through the API, by operation")); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.commits: %w", err)
	}
	if _, err = m.Int64ObservableGauge("outpost.hub.longpoll.waiting",
		metric.WithDescription("Agent long-polls held now"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(waiter.Waiting()))
			return nil
		})); err != nil {
		return nil, fmt.Errorf("metric outpost.hub.longpoll.waiting: %w", err)
	}
	return &out, nil
}

func (m *metrics) request(ctx context.Context, route, method string, status int, d time.Duration) {
	attrs := metric.WithAttributes(attribute.String("http.route", route), attribute.String("http.request.method", method),
		attribute.Int("http.response.status_code", status))
	m.requests.Add(ctx, 1, attrs)
	m.latency.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("http.route", route)))
}

func (m *metrics) reported(ctx context.Context, stored, stale int) {
	if stored > 0 {
		m.reports.Add(ctx, int64(stored), metric.WithAttributes(attribute.String("result", "stored")))
	}
	if stale > 0 {
		m.reports.Add(ctx, int64(stale), metric.WithAttributes(attribute.String("result", "stale")))
	}
}

func (m *metrics) webhook(ctx context.Context, provider, result string) {
	m.webhooks.Add(ctx, 1, metric.WithAttributes(attribute.String("provider", provider), attribute.String("result", result)))
}

func (m *metrics) committed(ctx context.Context, op string) {
	m.commits.Add(ctx, 1, metric.WithAttributes(attribute.String("operation", op)))
}
