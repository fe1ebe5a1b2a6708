package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	tests := map[string]struct {
		content, host string
		want          Credential
		found         bool
		wantErr       string
	}{
		"found":         {content: "ghcr.io: {username: bot, password: tok}\n", host: "ghcr.io", want: Credential{Username: "bot", Password: "tok"}, found: true},
		"other host":    {content: "ghcr.io: {username: bot, password: tok}\n", host: "charts.example.com"},
		"unknown field": {content: "ghcr.io: {user: bot}\n", host: "ghcr.io", wantErr: file + ": not a mapping of host to {username, password}"},
		"not a mapping": {content: "- ghcr.io\n", host: "ghcr.io", wantErr: "not a mapping of host"},
		"empty file":    {content: "\n", host: "ghcr.io", wantErr: file + " is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, found, err := FileCredentials(file)(tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "bot") {
					t.Errorf("err = %v shows the file's content", err)
				}
				return
			}
			if err != nil || found != tc.found || got != tc.want {
				t.Errorf("got %+v %v %v, want %+v %v", got, found, err, tc.want, tc.found)
			}
		})
	}
	if _, err := ReadCredentials(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v, want it named", err)
	}
}
