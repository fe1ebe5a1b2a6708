package repo

import (
	"errors"
	"reflect"
	"testing"
)

func TestOrder(t *testing.T) {
	tests := map[string]struct {
		deps      map[string][]string
		want      [][]string
		wantCycle []string
		wantUnk   *UnknownDependencyError
	}{
		"empty":       {deps: map[string][]string{}, want: nil},
		"independent": {deps: map[string][]string{"b": nil, "a": nil, "c": {}}, want: [][]string{{"a", "b", "c"}}},
		"chain":       {deps: map[string][]string{"web": {"api"}, "api": {"db"}, "db": nil}, want: [][]string{{"db"}, {"api"}, {"web"}}},
		"diamond": {
			deps: map[string][]string{"web": {"api", "auth"}, "api": {"db"}, "auth": {"db"}, "db": nil, "cron": nil},
			want: [][]string{{"cron", "db"}, {"api", "auth"}, {"web"}},
		},
		"level is the longest path": {
			deps: map[string][]string{"a": {"b", "d"}, "b": {"c"}, "c": nil, "d": nil},
			want: [][]string{{"c", "d"}, {"b"}, {"a"}},
		},
		"two-cycle":         {deps: map[string][]string{"a": {"b"}, "b": {"a"}}, wantCycle: []string{"a", "b", "a"}},
		"self":              {deps: map[string][]string{"a": {"a"}}, wantCycle: []string{"a", "a"}},
		"cycle behind root": {deps: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}, "z": nil}, wantCycle: []string{"b", "c", "d", "b"}},
		"unknown":           {deps: map[string][]string{"a": {"x"}}, wantUnk: &UnknownDependencyError{App: "a", DependsOn: "x"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Order(tc.deps)
			var cycle *CycleError
			var unk *UnknownDependencyError
			switch {
			case tc.wantCycle != nil:
				if !errors.As(err, &cycle) || !reflect.DeepEqual(cycle.Cycle, tc.wantCycle) {
					t.Fatalf("got %v, want cycle %v", err, tc.wantCycle)
				}
			case tc.wantUnk != nil:
				if !errors.As(err, &unk) || *unk != *tc.wantUnk {
					t.Fatalf("got %v, want %v", err, tc.wantUnk)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case !reflect.DeepEqual(got, tc.want):
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// checkOrder verifies that levels hold every app once and that every dependency
// sits in an earlier level.
func checkOrder(t *testing.T, deps map[string][]string, levels [][]string) {
	t.Helper()
	level := map[string]int{}
	for i, names := range levels {
		for _, n := range names {
			if _, dup := level[n]; dup {
				t.Fatalf("%s placed twice in %v", n, levels)
			}
			level[n] = i
		}
	}
	if len(level) != len(deps) {
		t.Fatalf("levels %v hold %d apps, want %d", levels, len(level), len(deps))
	}
	for n, ds := range deps {
		for _, d := range ds {
			if level[d] >= level[n] {
				t.Fatalf("%s (level %d) depends on %s (level %d)", n, level[n], d, level[d])
			}
		}
	}
}
