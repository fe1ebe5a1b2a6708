package v1_test

import (
	"strings"
	"testing"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// TestRulesMatchRepoContract checks that the API accepts exactly the cluster and app
// names and the versions the repository contract (sync/repo) accepts, so a name the
// hub takes can always be written to Git and one read from Git can always be reported.
func TestRulesMatchRepoContract(t *testing.T) {
	names := []string{"web", "prod-eu-1", "a", "0", "-a", "a-", "A", "a_b", "a.b", "a/b", "..", "a b", "a\n",
		"é", strings.Repeat("a", 63), strings.Repeat("a", 64), ""}
	for _, n := range names {
		api := apiv1.ValidateName("name", n) == nil
		contract := repo.ValidateName(n) == nil
		if api != contract {
			t.Errorf("name %q: API valid=%t, repository contract valid=%t", n, api, contract)
		}
	}
	versions := []string{"1.4.2", "v1.0.0-rc.1+b.5", "sha-3f1c", "img@sha256:ab", "a~b", "a:b", "a/b", "", "-1", ".1",
		"1 0", "1\t", "${X}", "a\"b", "a'b", "a#b", "é", strings.Repeat("1", repo.MaxVersionLen), strings.Repeat("1", repo.MaxVersionLen+1)}
	for _, v := range versions {
		api := apiv1.ValidateVersion("version", v) == nil
		contract := repo.ValidateVersion(v) == nil
		if api != contract {
			t.Errorf("version %q: API valid=%t, repository contract valid=%t", v, api, contract)
		}
	}
}
