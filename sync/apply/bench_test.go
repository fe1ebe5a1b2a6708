package apply

import (
	"fmt"
	"log/slog"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// headless makes the Services of objs headless: a benchmark creates more Services
// than the test cluster's service IP range holds.
func headless(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == "Service" {
			_ = unstructured.SetNestedField(o.Object, "None", "spec", "clusterIP")
		}
	}
	return objs
}

// BenchmarkSyncAppCreate measures the first sync of an app: every object created.
func BenchmarkSyncAppCreate(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			h := newHarness(b, quiet)
			var writes int
			for b.Loop() {
				b.StopTimer()
				ns := env.CreateNamespace(b)
				objs := headless(objects(b, ns, n))
				h.app = ns
				h.req.Reset()
				b.StartTimer()
				h.sync(b, objs, Options{})
				b.StopTimer()
				w, _, _ := h.req.Counts()
				writes += w
				b.StartTimer()
			}
			b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
		})
	}
}

// BenchmarkSyncAppNoOp measures a sync where neither the app nor the cluster changed.
func BenchmarkSyncAppNoOp(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			h := newHarness(b, quiet)
			objs := headless(objects(b, h.ns, n))
			h.sync(b, objs, Options{})
			h.req.Reset()
			for b.Loop() {
				h.sync(b, objs, Options{})
			}
			writes, dryRuns, reads := h.req.Counts()
			b.ReportMetric(float64(writes+dryRuns)/float64(b.N), "writes+dryruns/op")
			b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
		})
	}
}

func quiet(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }
