package fleetdiff

import "testing"

func TestFindDocument(t *testing.T) {
	const multi = "# header\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n--- \nkind: ConfigMap\nmetadata: {name: b}\n"
	tests := map[string]struct {
		kind, name string
		want       int
	}{
		"first document":        {"ConfigMap", "a", 1},
		"second document":       {"Deployment", "web", 7},
		"flow style, last":      {"ConfigMap", "b", 12},
		"same name, other kind": {"Service", "web", 0},
		"absent":                {"ConfigMap", "zzz", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := findDocument([]byte(multi), tc.kind, tc.name); got != tc.want {
				t.Fatalf("findDocument(%s %s) = %d, want %d", tc.kind, tc.name, got, tc.want)
			}
		})
	}
}
