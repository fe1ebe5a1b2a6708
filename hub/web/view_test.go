package web

import (
	"encoding/json"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestCellState(t *testing.T) {
	tests := map[string]struct {
		cell apiv1.MatrixCell
		want state
	}{
		"synced and current":     {apiv1.MatrixCell{DesiredVersion: "1", Version: "1", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent}, stateOK},
		"new version on its way": {apiv1.MatrixCell{DesiredVersion: "2", Version: "1", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent}, stateProgress},
		"syncing":                {apiv1.MatrixCell{Version: "1", Phase: apiv1.PhaseSyncing, Health: apiv1.HealthInProgress}, stateProgress},
		"drift beats progress":   {apiv1.MatrixCell{DesiredVersion: "2", Version: "1", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent, Drifted: 1}, stateDrift},
		"failure beats drift":    {apiv1.MatrixCell{Version: "1", Phase: apiv1.PhaseFailed, Health: apiv1.HealthCurrent, Drifted: 2}, stateFailed},
		"unhealthy":              {apiv1.MatrixCell{Version: "1", Phase: apiv1.PhaseSynced, Health: apiv1.HealthTimeout}, stateFailed},
		"source unavailable":     {apiv1.MatrixCell{Version: "1", Phase: apiv1.PhaseSourceUnavailable, Health: apiv1.HealthCurrent}, stateFailed},
		"desired, no report":     {apiv1.MatrixCell{DesiredVersion: "1"}, stateUnknown},
		"removed":                {apiv1.MatrixCell{Version: "1", Phase: apiv1.PhaseRemoved}, stateRemoved},
		"nothing":                {apiv1.MatrixCell{}, stateNone},
	}
	for name, tc := range tests {
		if got := cellState(tc.cell); got != tc.want {
			t.Errorf("%s: cellState = %s, want %s", name, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct{ got, want string }{
		"ago never":      {ago(now, time.Time{}), "never"},
		"ago just now":   {ago(now, now.Add(-time.Second)), "just now"},
		"ago seconds":    {ago(now, now.Add(-42*time.Second)), "42s ago"},
		"ago minutes":    {ago(now, now.Add(-5*time.Minute-10*time.Second)), "5m ago"},
		"ago hours":      {ago(now, now.Add(-26*time.Hour)), "26h ago"},
		"ago days":       {ago(now, now.Add(-72*time.Hour)), "3d ago"},
		"json number":    {jsonValue(json.RawMessage("5"), "-"), "5"},
		"json string":    {jsonValue(json.RawMessage(`"nginx:1.28"`), "-"), `"nginx:1.28"`},
		"json object":    {jsonValue(json.RawMessage("{ \"a\" : [1, 2] }"), "-"), `{"a":[1,2]}`},
		"json null":      {jsonValue(json.RawMessage("null"), "(removed)"), "(removed)"},
		"json absent":    {jsonValue(nil, "(unknown)"), "(unknown)"},
		"truncate short": {truncate("abc", 5), "abc"},
		"truncate long":  {truncate("abcdefgh", 5), "abcd…"},
		"duration ms":    {duration(850 * time.Millisecond), "850ms"},
		"duration s":     {duration(1626 * time.Millisecond), "1.6s"},
		"duration m":     {duration(125 * time.Second), "2m05s"},
		"duration none":  {duration(0), ""},
		"short revision": {shortRev("3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098"), "3f1c2a9b8e7d"},
		"counts":         {countsText(apiv1.Counts{Desired: 5, Created: 1, Configured: 2, Pruned: 1}), "5 objects · 1 created · 2 configured · 1 pruned"},
		"counts of none": {countsText(apiv1.Counts{}), ""},
	}
	for name, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", name, tc.got, tc.want)
		}
	}
}

func TestClusterFingerprintIgnoresHeartbeats(t *testing.T) {
	base := time.Date(2026, 3, 2, 10, 0, 5, 0, time.UTC)
	status := func(lastReport, received time.Time, version string) *apiv1.ClusterStatus {
		return &apiv1.ClusterStatus{
			Cluster: apiv1.Cluster{Name: "prod-eu", LastReportAt: lastReport},
			Apps: []apiv1.AppState{{
				AppStatus:  apiv1.AppStatus{App: "web", Version: version, Phase: apiv1.PhaseSynced},
				ReceivedAt: received,
			}},
		}
	}
	fp := func(st *apiv1.ClusterStatus) string { return fingerprint(clusterKey(st), &apiv1.EventList{}) }
	a := fp(status(base, base, "1.0"))
	if b := fp(status(base.Add(30*time.Second), base.Add(30*time.Second), "1.0")); b != a {
		t.Errorf("a heartbeat within the minute changed the fingerprint")
	}
	if b := fp(status(base.Add(2*time.Minute), base, "1.0")); b == a {
		t.Errorf("the last report moving to another minute did not change the fingerprint")
	}
	if b := fp(status(base, base, "1.1")); b == a {
		t.Errorf("a new version did not change the fingerprint")
	}
}
