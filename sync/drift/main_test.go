package drift

import (
	"testing"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// env is the package's cluster, set once by TestMain and only read by tests.
var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "drift"}, func(c *testenv.Cluster) { env = c })
}
