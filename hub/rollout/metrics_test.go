package rollout

import (
	"context"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// recorder is a Notifier that keeps what it hears.
type recorder struct {
	mu   sync.Mutex
	what []string
}

func (r *recorder) Notify(_ context.Context, run *apiv1.Rollout, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.what = append(r.what, run.ID+" "+what)
}

// The runs by state are a gauge, every transition a counter, and the runs that
// need a person reach the notifier.
func TestDriverMetricsAndNotifications(t *testing.T) {
	ctx := context.Background()
	tb := newTestbed(t)
	reader := sdkmetric.NewManualReader()
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	rec := &recorder{}
	d, err := New(Config{Store: tb.st, Git: tb.git, Holder: "hub-a", Now: tb.clock.Now, Meter: meter, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Start(ctx, "web", "2.0", "jane")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Act(ctx, r.ID, apiv1.ActionPause, "jane"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Act(ctx, r.ID, apiv1.ActionAbort, "jane"); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	gauge, transitions := map[string]int64{}, map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range data.DataPoints {
					st, _ := p.Attributes.Value("state")
					gauge[st.AsString()] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					st, _ := p.Attributes.Value("state")
					transitions[st.AsString()] = p.Value
				}
			}
		}
	}
	if gauge["Aborted"] != 1 || gauge["Running"] != 0 {
		t.Errorf("runs by state = %v, want one Aborted", gauge)
	}
	if transitions["Running"] != 1 || transitions["Paused"] != 1 || transitions["Aborted"] != 1 {
		t.Errorf("transitions = %v", transitions)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.what) != 2 || rec.what[0] != r.ID+" Paused: paused by jane" || rec.what[1] != r.ID+" Aborted: aborted by jane" {
		t.Errorf("notifications = %q", rec.what)
	}
}
