package repo

import (
	"slices"
)

// Order sorts apps by their dependencies. deps maps every app to the apps it
// depends on. The result groups the apps into levels: level 0 holds the apps
// without dependencies, level n the apps whose dependencies are all in levels
// below n. Names within a level are sorted, so the result is deterministic; apps
// of one level may be synced in parallel.
//
// Order returns *UnknownDependencyError when a dependency is not a key of deps and
// *CycleError, naming one cycle, when there is no such order.
func Order(deps map[string][]string) ([][]string, error) {
	names := sortedKeys(deps)
	for _, n := range names {
		for _, d := range deps[n] {
			if _, ok := deps[d]; !ok {
				return nil, &UnknownDependencyError{App: n, DependsOn: d}
			}
		}
	}
	level := make(map[string]int, len(deps))
	var levels [][]string
	for placed := 0; placed < len(names); {
		var next []string
		for _, n := range names {
			if _, done := level[n]; !done && allPlaced(deps[n], level) {
				next = append(next, n)
			}
		}
		if len(next) == 0 {
			return nil, &CycleError{Cycle: findCycle(deps, names, level)}
		}
		for _, n := range next {
			level[n] = len(levels)
		}
		levels = append(levels, next)
		placed += len(next)
	}
	return levels, nil
}

func allPlaced(deps []string, level map[string]int) bool {
	for _, d := range deps {
		if _, ok := level[d]; !ok {
			return false
		}
	}
	return true
}

// findCycle returns a cycle among the apps not yet placed: every unplaced app has
// an unplaced dependency, so following the smallest unplaced dependency from the
// smallest unplaced app must come back to an app already on the path.
func findCycle(deps map[string][]string, names []string, placed map[string]int) []string {
	unplaced := func(n string) bool { _, ok := placed[n]; return !ok }
	var start string
	for _, n := range names {
		if unplaced(n) {
			start = n
			break
		}
	}
	var path []string
	at := map[string]int{}
	for n := start; ; {
		if i, seen := at[n]; seen {
			return append(slices.Clone(path[i:]), n)
		}
		at[n] = len(path)
		path = append(path, n)
		next := ""
		for _, d := range deps[n] {
			if unplaced(d) && (next == "" || d < next) {
				next = d
			}
		}
		n = next
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
