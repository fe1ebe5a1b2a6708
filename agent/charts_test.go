package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/chart"
)

func TestChartCredential(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	tests := map[string]struct {
		content, host string
		want          chart.Credential
		found         bool
		wantErr       string
	}{
		"found":         {content: "ghcr.io: {username: bot, password: tok}\n", host: "ghcr.io", want: chart.Credential{Username: "bot", Password: "tok"}, found: true},
		"other host":    {content: "ghcr.io: {username: bot, password: tok}\n", host: "charts.example.com"},
		"unknown field": {content: "ghcr.io: {user: bot}\n", host: "ghcr.io", wantErr: "not a mapping of host to {username, password}"},
		"empty file":    {content: "\n", host: "ghcr.io", wantErr: "is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, found, err := chartCredential(file, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || found != tc.found || got != tc.want {
				t.Errorf("got %+v %v %v, want %+v %v", got, found, err, tc.want, tc.found)
			}
		})
	}
}
