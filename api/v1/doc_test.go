package v1

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestDocExamples decodes every JSON example of docs/api.md into the type its marker
// names, refusing unknown fields, and validates it when the type validates itself, so
// the documentation cannot drift from the types.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	// An example is a type marker, then a json code block.
	docExample := regexp.MustCompile("(?s)<!-- type: (\\w+) -->\\s*```json\\n(.*?)\\n```")
	types := map[string]func() any{
		"ErrorResponse":           func() any { return &ErrorResponse{} },
		"StatusReport":            func() any { return &StatusReport{} },
		"ReportResponse":          func() any { return &ReportResponse{} },
		"DesiredRevision":         func() any { return &DesiredRevision{} },
		"ClusterList":             func() any { return &ClusterList{} },
		"Cluster":                 func() any { return &Cluster{} },
		"RegisterClusterRequest":  func() any { return &RegisterClusterRequest{} },
		"RegisterClusterResponse": func() any { return &RegisterClusterResponse{} },
		"ClusterStatus":           func() any { return &ClusterStatus{} },
		"RotateTokenRequest":      func() any { return &RotateTokenRequest{} },
		"RotateTokenResponse":     func() any { return &RotateTokenResponse{} },
		"Matrix":                  func() any { return &Matrix{} },
		"SetVersionRequest":       func() any { return &SetVersionRequest{} },
		"ChangeResult":            func() any { return &ChangeResult{} },
		"BulkRequest":             func() any { return &BulkRequest{} },
		"BulkResult":              func() any { return &BulkResult{} },
		"HistoryList":             func() any { return &HistoryList{} },
		"EventList":               func() any { return &EventList{} },
		"StartRolloutRequest":     func() any { return &StartRolloutRequest{} },
		"Rollout":                 func() any { return &Rollout{} },
	}
	examples := docExample.FindAllSubmatch(doc, -1)
	if len(examples) < len(types)-1 {
		t.Fatalf("found %d typed examples in docs/api.md, want at least %d", len(examples), len(types)-1)
	}
	seen := map[string]bool{}
	for i, m := range examples {
		name, body := string(m[1]), m[2]
		newV, ok := types[name]
		if !ok {
			t.Errorf("example %d: unknown type %s", i, name)
			continue
		}
		seen[name] = true
		v := newV()
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("example %d (%s): %v", i, name, err)
			continue
		}
		if val, ok := v.(Validator); ok {
			if err := val.Validate(); err != nil {
				t.Errorf("example %d (%s) is invalid: %v", i, name, err)
			}
		}
		if cs, ok := v.(*ClusterStatus); ok {
			for j := range cs.Apps {
				if err := cs.Apps[j].AppStatus.Validate(); err != nil {
					t.Errorf("example %d (%s): apps[%d]: %v", i, name, j, err)
				}
			}
		}
	}
	for name := range types {
		if !seen[name] && name != "Cluster" {
			t.Errorf("docs/api.md has no example of %s", name)
		}
	}
}
