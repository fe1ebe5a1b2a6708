package drift

import (
	"testing"

	"github.com/outpost-gitops/outpost/sync/object"
)

// BenchmarkDetect measures one Detect call, as the agent makes on every watch event.
func BenchmarkDetect(b *testing.B) {
	for _, name := range []string{"captured-deployment", "scale-and-edit", "hpa-owns-replicas", "changed-keep-ownership"} {
		desired, live := loadPair(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Detect(object.DefaultOwner(), desired, live, observedAt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
