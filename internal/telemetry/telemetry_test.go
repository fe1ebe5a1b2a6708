package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsAreServed(t *testing.T) {
	tel, err := Setup(t.Context(), "outpost-test", func(string) string { return "" })
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
	tel, err := Setup(t.Context(), "outpost-test", func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("a well-formed endpoint must set up (export fails later, in the background): %v", err)
	}
	if _, span := tel.Tracer.Start(t.Context(), "sync"); !span.SpanContext().IsValid() {
		t.Error("tracer is a no-op although an endpoint is set")
	}
}
