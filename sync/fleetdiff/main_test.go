package fleetdiff

import (
	"testing"

	"github.com/outpost-gitops/outpost/internal/testenv"
)

// env is the package's real apiserver, for the --live tests.
var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "fleetdiff"}, func(c *testenv.Cluster) { env = c })
}
