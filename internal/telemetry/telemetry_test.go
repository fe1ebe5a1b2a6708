package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestMetricsAreServed(t *testing.T) {
	tel, err := Setup(t.Context(), "outpost-test", func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(t.Context())
	c, err := tel.Meter.Int64Counter("outpost_test_syncs")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(t.Context(), 3)
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"outpost_test_syncs_total", "} 3", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestOTLPEndpointEnablesTracing(t *testing.T) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
	tel, err := Setup(t.Context(), "outpost-test", func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("a well-formed endpoint must set up (export fails later, in the background): %v", err)
	}
	if _, span := tel.Tracer.Start(t.Context(), "sync"); !span.SpanContext().IsValid() {
		t.Error("tracer is a no-op although an endpoint is set")
	}
}

// TestSetupSetsNoGlobal: several hubs and agents share a process (the demo, the
// bench), so Setup must leave OTel's process-wide tracer provider and propagator alone,
// even when it exports spans.
func TestSetupSetsNoGlobal(t *testing.T) {
	tp0, prop0 := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
	for range 2 {
		tel, err := Setup(t.Context(), "outpost-test", func(k string) string { return env[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tel.Shutdown(t.Context())
	}
	if otel.GetTracerProvider() != tp0 {
		t.Error("Setup replaced the global tracer provider")
	}
	if otel.GetTextMapPropagator() != prop0 {
		t.Error("Setup replaced the global propagator")
	}
}

// TestGivenTracerProviderIsUsed: a caller's tracer provider receives the spans, and
// no exporter is set up from the environment.
func TestGivenTracerProviderIsUsed(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := Setup(t.Context(), "outpost-test", func(string) string { return "" }, tp)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer.Start(t.Context(), "sync")
	span.End()
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("the given provider recorded %d spans, want 1", n)
	}
}
