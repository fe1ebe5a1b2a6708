package field

import (
	"strings"
	"testing"
)

func TestPathString(t *testing.T) {
	tests := map[string]struct {
		path Path
		want string
	}{
		"fields": {
			path: Path{Field("spec"), Field("replicas")},
			want: "spec.replicas",
		},
		"keyed list": {
			path: Path{Field("containers"), Key(KeyField{"name", "web"}), Field("image")},
			want: "containers[name=web].image",
		},
		"composite key": {
			path: Path{Field("ports"), Key(KeyField{"containerPort", int64(80)}, KeyField{"protocol", "TCP"})},
			want: "ports[containerPort=80,protocol=TCP]",
		},
		"dotted map key": {
			path: Path{Field("metadata"), Field("labels"), Field("app.kubernetes.io/name")},
			want: `metadata.labels["app.kubernetes.io/name"]`,
		},
		"set value and index": {
			path: Path{Field("finalizers"), Value("a b"), Index(2)},
			want: `finalizers[="a b"][2]`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.path.String(); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEqualLeaf(t *testing.T) {
	tests := map[string]struct {
		desired, live any
		present       bool
		want          bool
	}{
		"same string":             {desired: "a", live: "a", present: true, want: true},
		"other string":            {desired: "a", live: "b", present: true, want: false},
		"int and float":           {desired: int64(3), live: float64(3), present: true, want: true},
		"go int":                  {desired: 3, live: int64(3), present: true, want: true},
		"numbers differ":          {desired: int64(3), live: int64(4), present: true, want: false},
		"millicores":              {desired: "1000m", live: "1", present: true, want: true},
		"number as quantity":      {desired: 0.25, live: "250m", present: true, want: true},
		"quantities differ":       {desired: "1Gi", live: "1G", present: true, want: false},
		"absent":                  {desired: "a", present: false, want: false},
		"empty map dropped":       {desired: map[string]any{}, present: false, want: true},
		"empty list dropped":      {desired: []any{}, present: false, want: true},
		"bool vs string":          {desired: true, live: "true", present: true, want: false},
		"nested map":              {desired: map[string]any{"a": []any{int64(1)}}, live: map[string]any{"a": []any{float64(1)}}, present: true, want: true},
		"nested map extra key":    {desired: map[string]any{"a": "x"}, live: map[string]any{"a": "x", "b": "y"}, present: true, want: false},
		"list order matters":      {desired: []any{"a", "b"}, live: []any{"b", "a"}, present: true, want: false},
		"nil desired, live value": {desired: nil, live: "x", present: true, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := EqualLeaf(tc.desired, tc.live, tc.present); got != tc.want {
				t.Fatalf("EqualLeaf(%v, %v, %v) = %v, want %v", tc.desired, tc.live, tc.present, got, tc.want)
			}
		})
	}
}

func TestSerializeKey(t *testing.T) {
	tests := map[string][]KeyField{
		"name":          {{"name", "web"}},
		"port":          {{"containerPort", int64(80)}, {"protocol", "TCP"}},
		"escaped value": {{"name", `a"b<c>&é`}},
		"bool value":    {{"enabled", true}},
		"float value":   {{"weight", 1.5}},
	}
	for name, key := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := serializeKey(key)
			if err != nil {
				t.Fatal(err)
			}
			want, err := serializeKeySlow(key)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("fast %s, managedFields form %s", got, want)
			}
		})
	}
}

func TestKeyNames(t *testing.T) {
	tests := map[string]struct {
		pe   string
		want []string
	}{
		"one string":      {pe: `k:{"name":"web"}`, want: []string{"name"}},
		"port":            {pe: `k:{"containerPort":80,"protocol":"TCP"}`, want: []string{"containerPort", "protocol"}},
		"literal values":  {pe: `k:{"a":true,"b":null,"c":-1.5e3}`, want: []string{"a", "b", "c"}},
		"escaped value":   {pe: `k:{"name":"a\"b,c"}`, want: []string{"name"}},
		"comma in string": {pe: `k:{"name":"a,b","x":"y"}`, want: []string{"name", "x"}},
		"object value":    {pe: `k:{"sel":{"a":"b"}}`, want: []string{"sel"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := KeyNames(tc.pe)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := KeyNames(`k:{"name":`); err == nil {
		t.Fatal("no error for a truncated key")
	}
}
