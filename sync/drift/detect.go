package drift

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/field"
	"github.com/outpost-gitops/outpost/sync/object"
)

// Detect reports the drift of one object: the fields of desired (what Outpost applied)
// that owner's field manager no longer owns in live's managedFields, or whose live value differs. A
// nil live means the object was deleted. observedAt is when the caller saw live; it
// dates changes whose managedFields entry has no time.
//
// Detect neither modifies nor deep-copies its inputs and is safe for concurrent use;
// the report shares no memory with them. A desired object without namespace takes
// live's. It fails when desired is nil, when the two objects are not the same object,
// or when live has no managedFields (ErrNoManagedFields). A create-only desired object
// (object.IsCreateOnly) drifts only by being deleted.
func Detect(owner object.Owner, desired, live *unstructured.Unstructured, observedAt time.Time) (*Report, error) {
	if desired == nil {
		return nil, fmt.Errorf("detect drift: desired object is nil")
	}
	ref := object.RefOf(desired)
	report := &Report{Object: ref, Version: desired.GroupVersionKind().Version, ObservedAt: observedAt}
	if live == nil {
		report.Deleted = true
		return report, nil
	}
	if object.IsCreateOnly(desired) {
		// Created once and then never written: only its deletion is drift.
		return report, nil
	}
	lref := object.RefOf(live)
	if ref.Namespace == "" {
		// A manifest may leave the namespace to the apply step's default.
		ref.Namespace = lref.Namespace
		report.Object = ref
	}
	if lref != ref {
		return nil, fmt.Errorf("detect drift of %s: live object is %s", ref, lref)
	}
	entries, own, err := readEntries(live.Object, owner.WithDefaults().FieldManager)
	if err != nil {
		return nil, fmt.Errorf("detect drift of %s: %w", ref, err)
	}
	w := walker{
		entries:    entries,
		own:        own,
		observedAt: observedAt,
		ref:        ref,
		secret:     ref.IsSecret(),
		path:       make(field.Path, 0, initialDepth),
	}
	// One backing array for the fieldsV1 nodes of the usual depths.
	backing := make([]map[string]any, initialDepth*len(entries))
	w.scratch = make([][]map[string]any, initialDepth)
	for d := range w.scratch {
		w.scratch[d] = backing[d*len(entries) : (d+1)*len(entries) : (d+1)*len(entries)]
	}
	w.walkRoot(desired.Object, live.Object)
	if len(w.out) > 1 {
		slices.SortFunc(w.out, func(a, b FieldDrift) int { return strings.Compare(a.Path, b.Path) })
	}
	report.Fields = w.out
	return report, nil
}

// initialDepth is the path depth preallocated for a walk; deeper paths still work.
const initialDepth = 16

// walker holds the state of one Detect call.
type walker struct {
	entries    []entry
	own        int
	observedAt time.Time
	ref        object.Ref
	secret     bool
	// path is the current path from the root.
	path field.Path
	// scratch holds one slice of fieldsV1 nodes per depth, reused across siblings.
	scratch [][]map[string]any
	out     []FieldDrift
}

// appliedMetadata tells which metadata fields are walked: those a manifest applies.
// Identity (name, namespace) and server-set metadata are not tracked in managedFields.
func appliedMetadata(name string) bool {
	switch name {
	case "labels", "annotations", "finalizers", "ownerReferences":
		return true
	}
	return false
}

func (w *walker) walkRoot(desired, live map[string]any) {
	nodes := w.nodes(0)
	for i := range w.entries {
		nodes[i] = w.entries[i].fields
	}
	if w.secret {
		desired = withStringDataAsData(desired)
	}
	for k, d := range desired {
		switch k {
		case "apiVersion", "kind", "status":
			continue
		case "metadata":
			dm, _ := d.(map[string]any)
			lm, _ := live["metadata"].(map[string]any)
			children := w.children(1, nodes, "metadata")
			w.path = append(w.path, field.Field("metadata"))
			for mk, dv := range dm {
				if !appliedMetadata(mk) {
					continue
				}
				lv, present := lm[mk]
				w.path = append(w.path, field.Field(mk))
				w.walk(2, w.children(2, children, mk), dv, lv, present)
				w.path = w.path[:len(w.path)-1]
			}
			w.path = w.path[:len(w.path)-1]
			continue
		}
		lv, present := live[k]
		w.path = append(w.path, field.Field(k))
		w.walk(1, w.children(1, nodes, k), d, lv, present)
		w.path = w.path[:len(w.path)-1]
	}
}

// withStringDataAsData returns a Secret with stringData merged into data, base64
// encoded, as the API server stores it. The input is not modified.
func withStringDataAsData(obj map[string]any) map[string]any {
	sd, _ := obj["stringData"].(map[string]any)
	if len(sd) == 0 {
		return obj
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	delete(out, "stringData")
	old, _ := obj["data"].(map[string]any)
	data := make(map[string]any, len(old)+len(sd))
	for k, v := range old {
		data[k] = v
	}
	for k, v := range sd {
		if s, ok := v.(string); ok {
			data[k] = base64.StdEncoding.EncodeToString([]byte(s))
		}
	}
	out["data"] = data
	return out
}

// nodes returns the scratch slice of fieldsV1 nodes for a depth, cleared.
func (w *walker) nodes(depth int) []map[string]any {
	for len(w.scratch) <= depth {
		w.scratch = append(w.scratch, make([]map[string]any, len(w.entries)))
	}
	s := w.scratch[depth]
	clear(s)
	return s
}

// children descends every entry's fieldsV1 node into field name.
func (w *walker) children(depth int, parents []map[string]any, name string) []map[string]any {
	out := w.nodes(depth)
	for i, p := range parents {
		if p != nil {
			out[i], _ = p["f:"+name].(map[string]any)
		}
	}
	return out
}

// childrenAt descends every entry's fieldsV1 node into the serialized element pe.
func (w *walker) childrenAt(depth int, parents []map[string]any, pe string) []map[string]any {
	out := w.nodes(depth)
	for i, p := range parents {
		if p != nil {
			out[i], _ = p[pe].(map[string]any)
		}
	}
	return out
}

// hasChildren tells whether a fieldsV1 node owns anything below itself.
func hasChildren(n map[string]any) bool {
	if len(n) > 1 {
		return true
	}
	if len(n) == 1 {
		_, self := n["."]
		return !self
	}
	return false
}

// owns tells whether a fieldsV1 node (as found under its parent) owns the field itself.
func owns(n map[string]any) bool {
	if n == nil {
		return false
	}
	if len(n) == 0 {
		return true
	}
	_, self := n["."]
	return self
}

// walk visits the desired value d at the current path. nodes are the entries' fieldsV1
// nodes for this path (nil where an entry has nothing), l the live value.
func (w *walker) walk(depth int, nodes []map[string]any, d, l any, present bool) {
	if d == nil {
		return // a desired null asks for no value; Outpost owns nothing there
	}
	granular := false
	for _, n := range nodes {
		if hasChildren(n) {
			granular = true
			break
		}
	}
	if granular {
		switch dv := d.(type) {
		case map[string]any:
			if len(dv) > 0 {
				w.walkMap(depth, nodes, dv, l)
				return
			}
		case []any:
			if len(dv) > 0 && w.walkList(depth, nodes, dv, l) {
				return
			}
		}
	}
	w.leaf(nodes, d, l, present, granular)
}

func (w *walker) walkMap(depth int, nodes []map[string]any, d map[string]any, l any) {
	lm, _ := l.(map[string]any)
	for k, dv := range d {
		lv, present := lm[k]
		w.path = append(w.path, field.Field(k))
		w.walk(depth+1, w.children(depth+1, nodes, k), dv, lv, present)
		w.path = w.path[:len(w.path)-1]
	}
}

// walkList visits the elements of a granular list; it returns false when the nodes do
// not describe a list (the caller then compares the list as a whole).
func (w *walker) walkList(depth int, nodes []map[string]any, d []any, l any) bool {
	kind, sample := field.ListKind(nodes)
	ll, _ := l.([]any)
	switch kind {
	case 'k':
		names, err := field.KeyNames(sample)
		if err != nil {
			return false
		}
		for _, de := range d {
			dm, ok := de.(map[string]any)
			if !ok {
				continue
			}
			key, pe := field.ResolveKey(nodes, names, dm)
			le, present := field.FindKeyed(ll, key)
			w.path = append(w.path, field.Key(key...))
			w.walk(depth+1, w.childrenAt(depth+1, nodes, pe), de, le, present)
			w.path = w.path[:len(w.path)-1]
		}
	case 'v':
		for _, de := range d {
			pe, err := field.SerializeValue(de)
			if err != nil {
				continue
			}
			le, present := field.FindValue(ll, de)
			w.path = append(w.path, field.Value(de))
			w.walk(depth+1, w.childrenAt(depth+1, nodes, pe), de, le, present)
			w.path = w.path[:len(w.path)-1]
		}
	case 'i':
		for i, de := range d {
			var le any
			present := i < len(ll)
			if present {
				le = ll[i]
			}
			w.path = append(w.path, field.Index(i))
			w.walk(depth+1, w.childrenAt(depth+1, nodes, "i:"+strconv.Itoa(i)), de, le, present)
			w.path = w.path[:len(w.path)-1]
		}
	default:
		return false
	}
	return true
}

// leaf decides whether the desired leaf d drifted. granular is true when some entry
// owns fields below this one (so d is an empty map or list whose members others may add).
func (w *walker) leaf(nodes []map[string]any, d, l any, present, granular bool) {
	if w.own >= 0 && owns(nodes[w.own]) {
		if granular && field.IsEmptyContainer(d) {
			return // Outpost owns the (empty) container; members belong to others
		}
		if field.EqualLeaf(d, l, present) {
			return
		}
		w.report(w.own, d, l, present)
		return
	}
	if w.ownsStringData() {
		// The API server records stringData in managedFields but stores data, so
		// another manager rewriting data never takes stringData from Outpost: only the
		// value tells. The last writer of data is the one to blame.
		if field.EqualLeaf(d, l, present) {
			return
		}
		i := w.owner(nodes)
		if i < 0 && present {
			i = w.own // nobody else wrote data: the desired value is newer than applied
		}
		w.report(i, d, l, present)
		return
	}
	if !present && field.IsEmptyContainer(d) {
		// An empty map or list the server dropped: nothing to own, nothing changed.
		return
	}
	w.report(w.owner(nodes), d, l, present)
}

// ownsStringData tells whether the current path is data.<key> of a Secret and
// Outpost's Apply entry owns stringData.<key>.
func (w *walker) ownsStringData() bool {
	if !w.secret || w.own < 0 || len(w.path) != 2 || w.path[0].Name != "data" || w.path[1].Kind != field.FieldKind {
		return false
	}
	sd, _ := w.entries[w.own].fields["f:stringData"].(map[string]any)
	n, _ := sd["f:"+w.path[1].Name].(map[string]any)
	return owns(n)
}

// owner picks the entry that now owns a field Outpost lost: the most recent writer,
// an entry without time counting as written when observed. -1 when nobody owns it.
func (w *walker) owner(nodes []map[string]any) int {
	best := -1
	var bestTime time.Time
	for i, n := range nodes {
		if i == w.own || !owns(n) {
			continue
		}
		t, _ := w.entries[i].when(w.observedAt)
		if best < 0 || t.After(bestTime) {
			best, bestTime = i, t
		}
	}
	return best
}

// report appends a drifted field owned by entry i (-1: nobody).
func (w *walker) report(i int, d, l any, present bool) {
	fd := FieldDrift{Path: w.path.String()}
	if i >= 0 {
		e := &w.entries[i]
		fd.Manager, fd.Operation, fd.Subresource = e.manager, e.operation, e.subresource
		fd.Time, fd.TimeObserved = e.when(w.observedAt)
	} else {
		fd.Time, fd.TimeObserved = w.observedAt, true
	}
	if !present {
		l = nil
	}
	if field.SecretValue(w.ref, w.path) {
		fd.Redacted = true
		fd.Desired = Redacted
		if l != nil {
			fd.Live = Redacted
		}
	} else {
		fd.Desired = copyValue(d)
		if l != nil {
			fd.Live = copyValue(l)
		}
	}
	w.out = append(w.out, fd)
}

// copyValue deep-copies a JSON-like value for a report, so the report does not share
// memory with the caller's objects. Go numbers become int64 or float64; values of other
// types are formatted with %v.
func copyValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, float64:
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return fmt.Sprintf("%v", v)
}
