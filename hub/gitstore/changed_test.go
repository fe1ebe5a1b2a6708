package gitstore

import (
	"strings"
	"testing"
)

func TestChangedClusters(t *testing.T) {
	base := func() treeSummary {
		return treeSummary{
			clusters: map[string]string{"prod": "p1", "staging": "s1", "edge": "e1"},
			apps:     map[string]string{"web": "w1", "api": "a1", "db": "d1"},
			listed:   map[string][]string{"prod": {"web", "api"}, "staging": {"web"}, "edge": {}},
		}
	}
	tests := map[string]struct {
		edit func(old, cur *treeSummary)
		want string
	}{
		"nothing":              {edit: func(_, _ *treeSummary) {}, want: ""},
		"one cluster's files":  {edit: func(_, c *treeSummary) { c.clusters["staging"] = "s2" }, want: "staging"},
		"app used by two":      {edit: func(_, c *treeSummary) { c.apps["web"] = "w2" }, want: "prod,staging"},
		"app used by one":      {edit: func(_, c *treeSummary) { c.apps["api"] = "a2" }, want: "prod"},
		"app used by none":     {edit: func(_, c *treeSummary) { c.apps["db"] = "d2" }, want: ""},
		"new app nobody lists": {edit: func(_, c *treeSummary) { c.apps["cache"] = "c1" }, want: ""},
		"app removed":          {edit: func(_, c *treeSummary) { delete(c.apps, "api") }, want: "prod"},
		"cluster added":        {edit: func(_, c *treeSummary) { c.clusters["new"] = "n1" }, want: "new"},
		"cluster removed":      {edit: func(_, c *treeSummary) { delete(c.clusters, "edge"); delete(c.listed, "edge") }, want: "edge"},
		"app and its new user": {
			edit: func(_, c *treeSummary) {
				c.apps["db"] = "d2"
				c.clusters["edge"], c.listed["edge"] = "e2", []string{"db"}
			},
			want: "edge",
		},
		"app dropped by a cluster and changed": {
			// staging stopped listing web in the same change that changed web:
			// staging changed (its own files), prod changed (web).
			edit: func(_, c *treeSummary) {
				c.apps["web"] = "w2"
				c.clusters["staging"], c.listed["staging"] = "s2", nil
			},
			want: "prod,staging",
		},
		"listed only in the old revision": {
			edit: func(o, c *treeSummary) {
				c.apps["db"] = "d2"
				o.listed["edge"] = []string{"db"}
			},
			want: "edge",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			old, cur := base(), base()
			tc.edit(&old, &cur)
			if got := strings.Join(changedClusters(old, cur), ","); got != tc.want {
				t.Errorf("changedClusters = %q, want %q", got, tc.want)
			}
		})
	}
}
