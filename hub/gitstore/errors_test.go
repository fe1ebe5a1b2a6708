package gitstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"
)

// Kinds and Inputs list every constant of their type, so that the tables keyed
// by them (the hub API's error mapping) are checked against all of them.
func TestKindsAndInputsListEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string][]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok {
				for _, n := range vs.Names {
					declared[id.Name] = append(declared[id.Name], n.Name)
				}
			}
		}
	}
	tests := map[string]struct {
		listed int
		values []string
	}{
		"Kind":  {len(Kinds()), kindStrings(Kinds())},
		"Input": {len(Inputs()), inputStrings(Inputs())},
	}
	for typ, tc := range tests {
		if n := len(declared[typ]); n == 0 || n != tc.listed {
			t.Errorf("errors.go declares %d %s constants %v, %ss() lists %d", n, typ, declared[typ], typ, tc.listed)
		}
		sorted := slices.Sorted(slices.Values(tc.values))
		if len(slices.Compact(sorted)) != len(tc.values) {
			t.Errorf("%ss() lists a value twice: %v", typ, tc.values)
		}
	}
}

func kindStrings(ks []Kind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k))
	}
	return out
}

func inputStrings(in []Input) []string {
	var out []string
	for _, i := range in {
		out = append(out, string(i))
	}
	return out
}
