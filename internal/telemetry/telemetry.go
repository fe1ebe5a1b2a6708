// Package telemetry sets up OpenTelemetry for the hub and the agent: metrics through
// the OTel Prometheus exporter (served on /metrics from a registry of the process's
// own, not the global one), and tracing through OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. Trace
// context is propagated with W3C tracecontext and baggage (Propagator).
//
// Nothing here sets OTel's process globals: several hubs and agents run in one process
// (the demo, the bench), each with its own providers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry holds a process's meter and tracer providers.
type Telemetry struct {
	// Meter creates the process's instruments.
	Meter metric.Meter
	// Tracer creates spans; a no-op tracer when no OTLP endpoint is configured.
	Tracer trace.Tracer
	// Metrics serves the Prometheus exposition of Meter's instruments and the Go
	// runtime and process collectors.
	Metrics http.Handler

	shutdown []func(context.Context) error
}

// Propagator is the trace-context format of the hub and agent, the contract between
// them on every request: W3C tracecontext and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup creates the providers for service (e.g. "outpost-agent"); it sets no global.
// Spans go to tp when it is not nil (the caller owns it), else to an OTLP/HTTP
// exporter when the OTEL_EXPORTER_OTLP_* variables name an endpoint, else nowhere.
// getenv is os.Getenv in production.
func Setup(ctx context.Context, service string, getenv func(string) string, tp trace.TracerProvider) (*Telemetry, error) {
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t := &Telemetry{
		Meter:    mp.Meter(service),
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		shutdown: []func(context.Context) error{mp.Shutdown},
	}
	if tp != nil {
		t.Tracer = tp.Tracer(service)
		return t, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		t.Tracer = noop.NewTracerProvider().Tracer(service)
		return t, nil
	}
	// The exporter reads the endpoint, headers and TLS settings from the standard
	// OTEL_EXPORTER_OTLP_* variables itself.
	te, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
	}
	stp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
	t.Tracer = stp.Tracer(service)
	t.shutdown = append(t.shutdown, stp.Shutdown)
	return t, nil
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
