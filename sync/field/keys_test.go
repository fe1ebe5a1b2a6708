package field

import (
	"encoding/json"
	"slices"
	"testing"

	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/outpost-gitops/outpost/sync/object"
)

// FuzzKeyNames checks the hand-written fast path that reads the key field names of a
// serialized associative-list element against structured-merge-diff's parser: when
// the fast path accepts an input, the parser must accept it too and give the same
// names.
func FuzzKeyNames(f *testing.F) {
	for _, s := range []string{
		`k:{"name":"web"}`, `k:{"containerPort":80,"protocol":"TCP"}`, `k:{"a":true,"b":null,"c":-1.5e3}`,
		`k:{"name":"a\"b,c"}`, `k:{"name":"a,b","x":"y"}`, `k:{"sel":{"a":"b"}}`, `k:{"b":1,"a":2}`,
		`k:{"name":`, `k:{}`, `k:{"a":1,}`, `k:{"a":1e}`, `k:{"a":"x"y"}`, `k:{"a":1,"a":2}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pe string) {
		fast, ok := scanKeyNames(pe)
		if !ok {
			return // the slow path (the parser itself) decides
		}
		e, err := fieldpath.DeserializePathElement(pe)
		if err != nil || e.Key == nil {
			t.Fatalf("fast path accepted %q (names %q), structured-merge-diff refuses it: %v", pe, fast, err)
		}
		var want []string
		for _, kf := range *e.Key {
			want = append(want, kf.Name)
		}
		if !slices.Equal(fast, want) {
			t.Fatalf("%q: fast path names %q, structured-merge-diff %q", pe, fast, want)
		}
	})
}

// FuzzSerializeKey checks the fast serialization of a key against
// structured-merge-diff's, for keys of one or two string or integer fields.
func FuzzSerializeKey(f *testing.F) {
	f.Add("name", "web", "", "", int64(0), false)
	f.Add("containerPort", "", "protocol", "TCP", int64(80), true)
	f.Add("name", `a"b<c>&é`, "", "", int64(-1), false)
	f.Add("a\x01", "\x7f", "b", "", int64(1<<62), true)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, i int64, intFirst bool) {
		if n1 == "" || n2 == n1 {
			return
		}
		var key []KeyField
		if intFirst {
			key = append(key, KeyField{Name: n1, Value: i})
		} else {
			key = append(key, KeyField{Name: n1, Value: v1})
		}
		if n2 != "" {
			key = append(key, KeyField{Name: n2, Value: v2})
		}
		slices.SortFunc(key, func(a, b KeyField) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
		fast, err := serializeKey(key)
		if err != nil {
			t.Skip()
		}
		slow, err := serializeKeySlow(key)
		if err != nil {
			t.Fatalf("structured-merge-diff cannot serialize %v: %v", key, err)
		}
		if fast != slow {
			t.Fatalf("key %v: fast %s, structured-merge-diff %s", key, fast, slow)
		}
		back, err := fieldpath.DeserializePathElement(fast)
		if err != nil || back.Key == nil || len(*back.Key) != len(key) {
			t.Fatalf("%s does not parse back: %v", fast, err)
		}
	})
}

func TestEqualNumbersOfEveryType(t *testing.T) {
	tests := map[string]struct {
		a, b any
		want bool
	}{
		"json.Number and int64": {json.Number("3"), int64(3), true},
		"json.Number and float": {json.Number("2.5"), 2.5, true},
		"uint64 and int64":      {uint64(7), int64(7), true},
		"int32 and float32":     {int32(2), float32(2), true},
		"number and string":     {int64(3), "3", false},
		"string and number":     {"3", int64(3), false},
		"map and list":          {map[string]any{}, []any{}, false},
		"nil and empty map":     {nil, map[string]any{}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Equal(tc.a, tc.b); got != tc.want {
				t.Fatalf("Equal(%#v, %#v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestSecretValue(t *testing.T) {
	secret := object.Ref{Kind: "Secret", Namespace: "shop", Name: "db"}
	custom := object.Ref{Group: "example.com", Kind: "Secret", Namespace: "shop", Name: "db"}
	cm := object.Ref{Kind: "ConfigMap", Namespace: "shop", Name: "db"}
	tests := map[string]struct {
		ref  object.Ref
		path Path
		want bool
	}{
		"secret data key":          {secret, Path{Field("data"), Field("password")}, true},
		"secret data whole":        {secret, Path{Field("data")}, true},
		"secret stringData key":    {secret, Path{Field("stringData"), Field("token")}, true},
		"secret last-applied":      {secret, Path{Field("metadata"), Field("annotations"), Field(LastAppliedAnnotation)}, true},
		"secret annotations":       {secret, Path{Field("metadata"), Field("annotations")}, true},
		"secret other annotation":  {secret, Path{Field("metadata"), Field("annotations"), Field("team")}, false},
		"secret label":             {secret, Path{Field("metadata"), Field("labels"), Field("app")}, false},
		"secret type":              {secret, Path{Field("type")}, false},
		"custom kind named Secret": {custom, Path{Field("data"), Field("password")}, false},
		"configmap data":           {cm, Path{Field("data"), Field("password")}, false},
		"empty path":               {secret, nil, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := SecretValue(tc.ref, tc.path); got != tc.want {
				t.Fatalf("SecretValue(%s, %s) = %v, want %v", tc.ref, tc.path, got, tc.want)
			}
		})
	}
}
