package httpapi

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/fleetdiff"
)

// openAPIDoc reads docs/openapi.yaml as generic YAML.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPICoversEveryRoute checks that docs/openapi.yaml documents exactly the
// routes the API serves, and that every $ref in it resolves.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := openAPIDoc(t)
	h := newTestHub(t, t.TempDir())
	served := map[string]bool{}
	for _, rt := range h.api.Routes() {
		served[strings.ToLower(rt.Method)+" "+rt.Path] = true
	}
	documented := map[string]bool{}
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented[m+" "+p] = true
			}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("the API serves %s, docs/openapi.yaml does not document it", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !served[r] {
			t.Errorf("docs/openapi.yaml documents %s, the API does not serve it", r)
		}
	}
	var refs []string
	collectRefs(doc, &refs)
	for _, ref := range refs {
		if resolve(doc, ref) == nil {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
	if len(refs) < 50 {
		t.Errorf("found only %d $refs: is the document read right?", len(refs))
	}
}

// TestOpenAPISchemasMatchTypes checks that every object schema lists exactly the JSON
// fields of its Go type, so the document cannot drift from api/v1.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := openAPIDoc(t)
	types := map[string]reflect.Type{
		"ErrorResponse":           reflect.TypeFor[apiv1.ErrorResponse](),
		"AgentInfo":               reflect.TypeFor[apiv1.AgentInfo](),
		"ClusterSummary":          reflect.TypeFor[apiv1.ClusterSummary](),
		"Cluster":                 reflect.TypeFor[apiv1.Cluster](),
		"ClusterList":             reflect.TypeFor[apiv1.ClusterList](),
		"RegisterClusterRequest":  reflect.TypeFor[apiv1.RegisterClusterRequest](),
		"RegisterClusterResponse": reflect.TypeFor[apiv1.RegisterClusterResponse](),
		"RotateTokenRequest":      reflect.TypeFor[apiv1.RotateTokenRequest](),
		"RotateTokenResponse":     reflect.TypeFor[apiv1.RotateTokenResponse](),
		"Generation":              reflect.TypeFor[apiv1.Generation](),
		"ObjectRef":               reflect.TypeFor[apiv1.ObjectRef](),
		"ObjectChange":            reflect.TypeFor[apiv1.ObjectChange](),
		"Health":                  reflect.TypeFor[apiv1.Health](),
		"Counts":                  reflect.TypeFor[apiv1.Counts](),
		"AppError":                reflect.TypeFor[apiv1.AppError](),
		"Durations":               reflect.TypeFor[apiv1.Durations](),
		"AppStatus":               reflect.TypeFor[apiv1.AppStatus](),
		"DriftField":              reflect.TypeFor[apiv1.DriftField](),
		"Drift":                   reflect.TypeFor[apiv1.Drift](),
		"StatusReport":            reflect.TypeFor[apiv1.StatusReport](),
		"ReportResponse":          reflect.TypeFor[apiv1.ReportResponse](),
		"DesiredRevision":         reflect.TypeFor[apiv1.DesiredRevision](),
		"AppState":                reflect.TypeFor[apiv1.AppState](),
		"ClusterStatus":           reflect.TypeFor[apiv1.ClusterStatus](),
		"MatrixCell":              reflect.TypeFor[apiv1.MatrixCell](),
		"MatrixRow":               reflect.TypeFor[apiv1.MatrixRow](),
		"Matrix":                  reflect.TypeFor[apiv1.Matrix](),
		"SetVersionRequest":       reflect.TypeFor[apiv1.SetVersionRequest](),
		"ChangeResult":            reflect.TypeFor[apiv1.ChangeResult](),
		"BulkRequest":             reflect.TypeFor[apiv1.BulkRequest](),
		"BulkChange":              reflect.TypeFor[apiv1.BulkChange](),
		"BulkResult":              reflect.TypeFor[apiv1.BulkResult](),
		"HistoryEntry":            reflect.TypeFor[apiv1.HistoryEntry](),
		"HistoryList":             reflect.TypeFor[apiv1.HistoryList](),
		"Event":                   reflect.TypeFor[apiv1.Event](),
		"EventList":               reflect.TypeFor[apiv1.EventList](),
		"WebhookResponse":         reflect.TypeFor[WebhookResponse](),
		"StartRolloutRequest":     reflect.TypeFor[apiv1.StartRolloutRequest](),
		"RolloutList":             reflect.TypeFor[apiv1.RolloutList](),
		"Rollout":                 reflect.TypeFor[apiv1.Rollout](),
		"RolloutPolicy":           reflect.TypeFor[apiv1.RolloutPolicy](),
		"RolloutWave":             reflect.TypeFor[apiv1.RolloutWave](),
		"RolloutCluster":          reflect.TypeFor[apiv1.RolloutCluster](),
		"RolloutReport":           reflect.TypeFor[apiv1.RolloutReport](),
		"RolloutStep":             reflect.TypeFor[apiv1.RolloutStep](),
		"FleetDiff":               reflect.TypeFor[fleetdiff.Result](),
	}
	schemas := resolve(doc, "#/components/schemas").(map[string]any)
	for name, s := range schemas {
		props := schemaProperties(doc, s)
		typ, ok := types[name]
		if !ok {
			if len(props) > 0 {
				t.Errorf("schema %s has properties but no Go type in this test", name)
			}
			continue
		}
		want := jsonFields(typ)
		if !slices.Equal(slices.Sorted(maps.Keys(props)), want) {
			t.Errorf("schema %s has properties %v, %s has JSON fields %v", name, slices.Sorted(maps.Keys(props)), typ, want)
		}
	}
	for name := range types {
		if schemas[name] == nil {
			t.Errorf("docs/openapi.yaml has no schema %s", name)
		}
	}
}

// schemaProperties returns the properties of a schema, following $ref and allOf.
func schemaProperties(doc map[string]any, s any) map[string]bool {
	out := map[string]bool{}
	m, ok := s.(map[string]any)
	if !ok {
		return out
	}
	if ref, ok := m["$ref"].(string); ok {
		return schemaProperties(doc, resolve(doc, ref))
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for p := range props {
			out[p] = true
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, part := range all {
			maps.Copy(out, schemaProperties(doc, part))
		}
	}
	return out
}

// jsonFields returns the sorted JSON field names of a struct type, embedded structs
// inlined.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// collectRefs appends every $ref of v.
func collectRefs(v any, refs *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				*refs = append(*refs, s)
			} else {
				collectRefs(e, refs)
			}
		}
	case []any:
		for _, e := range v {
			collectRefs(e, refs)
		}
	}
}

// resolve returns what a local $ref ("#/components/schemas/X") points to, or nil.
func resolve(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, p := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}
