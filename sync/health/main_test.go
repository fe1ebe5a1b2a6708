package health

import (
	"testing"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// env is the package's cluster, set once by TestMain and only read by tests. Health
// needs controllers, a scheduler and (kwok) nodes for Deployments to become Available.
var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "health", Mode: testenv.ModeFull, Nodes: 2}, func(c *testenv.Cluster) { env = c })
}
