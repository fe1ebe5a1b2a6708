package drift

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// Detect reports the drift of one object: the fields of desired (what Outpost applied)
// that Outpost no longer owns in live's managedFields, or whose live value differs. A
// nil live means the object was deleted. observedAt is when the caller saw live; it
// dates changes whose managedFields entry has no time.
//
// Detect neither modifies nor deep-copies its inputs and is safe for concurrent use;
// the report shares no memory with them. A desired object without namespace takes
// live's. It fails when desired is nil, when the two objects are not the same object,
// or when live has no managedFields (ErrNoManagedFields).
func Detect(desired, live *unstructured.Unstructured, observedAt time.Time) (*Report, error) {
	if desired == nil {
		return nil, fmt.Errorf("detect drift: desired object is nil")
	}
	ref := RefOf(desired)
	report := &Report{Object: ref, ObservedAt: observedAt}
	if live == nil {
		report.Deleted = true
		return report, nil
	}
	lref := RefOf(live)
	if ref.Namespace == "" {
		// A manifest may leave the namespace to the apply step's default.
		ref.Namespace = lref.Namespace
		report.Object = ref
	}
	if lref.Kind != ref.Kind || lref.Name != ref.Name || lref.Namespace != ref.Namespace {
		return nil, fmt.Errorf("detect drift of %s: live object is %s", ref, lref)
	}
	entries, own, err := readEntries(live.Object)
	if err != nil {
		return nil, fmt.Errorf("detect drift of %s: %w", ref, err)
	}
	w := walker{
		entries:    entries,
		own:        own,
		observedAt: observedAt,
		secret:     isSecret(ref),
		path:       make([]pathElem, 0, initialDepth),
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

func isSecret(ref ObjectRef) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Secret"
}

// walker holds the state of one Detect call.
type walker struct {
	entries    []entry
	own        int
	observedAt time.Time
	secret     bool
	// path is the current path from the root.
	path []pathElem
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
			w.path = append(w.path, pathElem{kind: fieldElem, name: "metadata"})
			for mk, dv := range dm {
				if !appliedMetadata(mk) {
					continue
				}
				lv, present := lm[mk]
				w.path = append(w.path, pathElem{kind: fieldElem, name: mk})
				w.walk(2, w.children(2, children, mk), dv, lv, present)
				w.path = w.path[:len(w.path)-1]
			}
			w.path = w.path[:len(w.path)-1]
			continue
		}
		lv, present := live[k]
		w.path = append(w.path, pathElem{kind: fieldElem, name: k})
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
		w.path = append(w.path, pathElem{kind: fieldElem, name: k})
		w.walk(depth+1, w.children(depth+1, nodes, k), dv, lv, present)
		w.path = w.path[:len(w.path)-1]
	}
}

// walkList visits the elements of a granular list; it returns false when the nodes do
// not describe a list (the caller then compares the list as a whole).
func (w *walker) walkList(depth int, nodes []map[string]any, d []any, l any) bool {
	kind, sample := listKind(nodes)
	ll, _ := l.([]any)
	switch kind {
	case 'k':
		names, err := keyNames(sample)
		if err != nil {
			return false
		}
		for _, de := range d {
			dm, ok := de.(map[string]any)
			if !ok {
				continue
			}
			key, pe := resolveKey(nodes, names, dm)
			le, present := findKeyed(ll, key)
			w.path = append(w.path, pathElem{kind: keyElem, key: key})
			w.walk(depth+1, w.childrenAt(depth+1, nodes, pe), de, le, present)
			w.path = w.path[:len(w.path)-1]
		}
	case 'v':
		for _, de := range d {
			pe, err := fieldpath.SerializePathElement(fieldpath.PathElement{Value: ptr(value.NewValueInterface(de))})
			if err != nil {
				continue
			}
			le, present := findValue(ll, de)
			w.path = append(w.path, pathElem{kind: valueElem, value: de})
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
			w.path = append(w.path, pathElem{kind: indexElem, index: i})
			w.walk(depth+1, w.childrenAt(depth+1, nodes, "i:"+strconv.Itoa(i)), de, le, present)
			w.path = w.path[:len(w.path)-1]
		}
	default:
		return false
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// listKind returns the element kind of a list's fieldsV1 nodes ('k', 'v' or 'i') and
// one serialized element of that kind.
func listKind(nodes []map[string]any) (byte, string) {
	for _, n := range nodes {
		for k := range n {
			if len(k) > 2 && k[1] == ':' && k[0] != 'f' {
				return k[0], k
			}
		}
	}
	return 0, ""
}

// keyNames returns the key field names of a serialized "k:{...}" element, sorted.
func keyNames(pe string) ([]string, error) {
	if names, ok := scanKeyNames(pe); ok {
		return names, nil
	}
	e, err := fieldpath.DeserializePathElement(pe)
	if err != nil || e.Key == nil {
		return nil, fmt.Errorf("parse key %s: %w", pe, err)
	}
	names := make([]string, len(*e.Key))
	for i, f := range *e.Key {
		names[i] = f.Name
	}
	return names, nil
}

// scanKeyNames is keyNames' fast path for the usual keys: plain names with string,
// number, boolean or null values, as managedFields writes them (sorted). It returns
// false for anything else.
func scanKeyNames(pe string) ([]string, bool) {
	if !strings.HasPrefix(pe, "k:{") || !strings.HasSuffix(pe, "}") {
		return nil, false
	}
	s := pe[3 : len(pe)-1]
	names := make([]string, 0, 2)
	for len(s) > 0 {
		if s[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return nil, false
		}
		name := s[1 : 1+end]
		if strings.IndexByte(name, '\\') >= 0 || (len(names) > 0 && name <= names[len(names)-1]) {
			return nil, false
		}
		names = append(names, name)
		s = s[2+end:]
		if len(s) == 0 || s[0] != ':' {
			return nil, false
		}
		s = s[1:]
		// Skip the value: a string without escapes, or a bare literal.
		if len(s) > 0 && s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 || strings.IndexByte(s[1:1+end], '\\') >= 0 {
				return nil, false
			}
			s = s[2+end:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			if end == 0 || strings.ContainsAny(s[:end], "{}[]\"") {
				return nil, false
			}
			s = s[end:]
		}
		if len(s) > 0 {
			if s[0] != ',' {
				return nil, false
			}
			s = s[1:]
		}
	}
	return names, len(names) > 0
}

// resolveKey returns the key of a desired list element and its serialized form as
// found in managedFields. When the element lacks a key field the server defaulted
// (a port's protocol), the key is completed from the first managedFields element
// whose other key fields match.
func resolveKey(nodes []map[string]any, names []string, d map[string]any) ([]keyField, string) {
	key := make([]keyField, 0, len(names))
	complete := true
	for _, n := range names {
		v, ok := d[n]
		if !ok {
			complete = false
			continue
		}
		key = append(key, keyField{name: n, value: v})
	}
	pe, err := serializeKey(key)
	if complete && err == nil {
		for _, n := range nodes {
			if _, ok := n[pe]; ok {
				return key, pe
			}
		}
	}
	// Slow path: compare with every keyed element of every entry.
	for _, n := range nodes {
		for k := range n {
			if !strings.HasPrefix(k, "k:") {
				continue
			}
			e, err := fieldpath.DeserializePathElement(k)
			if err != nil || e.Key == nil || !keyMatches(*e.Key, d) {
				continue
			}
			full := make([]keyField, len(*e.Key))
			for i, f := range *e.Key {
				full[i] = keyField{name: f.Name, value: f.Value.Unstructured()}
			}
			return full, k
		}
	}
	return key, pe
}

// serializeKey renders a key as managedFields does, k:{"name":"web"}, with a fast path
// for the usual keys: names and values made of plain ASCII, and integers.
func serializeKey(key []keyField) (string, error) {
	var b strings.Builder
	b.WriteString("k:{")
	for i, f := range key {
		if !plainJSON(f.name) {
			return serializeKeySlow(key)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(f.name)
		b.WriteString(`":`)
		switch v := f.value.(type) {
		case string:
			if !plainJSON(v) {
				return serializeKeySlow(key)
			}
			b.WriteByte('"')
			b.WriteString(v)
			b.WriteByte('"')
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		default:
			return serializeKeySlow(key)
		}
	}
	b.WriteByte('}')
	return b.String(), nil
}

func serializeKeySlow(key []keyField) (string, error) {
	fl := make(value.FieldList, len(key))
	for i, f := range key {
		fl[i] = value.Field{Name: f.name, Value: value.NewValueInterface(f.value)}
	}
	fl.Sort()
	return fieldpath.SerializePathElement(fieldpath.PathElement{Key: &fl})
}

// plainJSON tells whether s needs no escaping in JSON (and no HTML escaping either).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// keyMatches tells whether every key field present in d equals the element's.
func keyMatches(key value.FieldList, d map[string]any) bool {
	for _, f := range key {
		if v, ok := d[f.Name]; ok && !equal(v, f.Value.Unstructured()) {
			return false
		}
	}
	return true
}

// findKeyed returns the live list element whose key fields equal key.
func findKeyed(l []any, key []keyField) (any, bool) {
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		match := true
		for _, f := range key {
			if !equal(m[f.name], f.value) {
				match = false
				break
			}
		}
		if match {
			return e, true
		}
	}
	return nil, false
}

// findValue returns the live set element equal to v.
func findValue(l []any, v any) (any, bool) {
	for _, e := range l {
		if equal(e, v) {
			return e, true
		}
	}
	return nil, false
}

// leaf decides whether the desired leaf d drifted. granular is true when some entry
// owns fields below this one (so d is an empty map or list whose members others may add).
func (w *walker) leaf(nodes []map[string]any, d, l any, present, granular bool) {
	if w.own >= 0 && owns(nodes[w.own]) {
		if granular && isEmptyContainer(d) {
			return // Outpost owns the (empty) container; members belong to others
		}
		if equalLeaf(d, l, present) {
			return
		}
		w.report(w.own, d, l, present)
		return
	}
	if w.ownsStringData() {
		// The API server records stringData in managedFields but stores data, so
		// another manager rewriting data never takes stringData from Outpost: only the
		// value tells. The last writer of data is the one to blame.
		if equalLeaf(d, l, present) {
			return
		}
		i := w.owner(nodes)
		if i < 0 && present {
			i = w.own // nobody else wrote data: the desired value is newer than applied
		}
		w.report(i, d, l, present)
		return
	}
	if !present && isEmptyContainer(d) {
		// An empty map or list the server dropped: nothing to own, nothing changed.
		return
	}
	w.report(w.owner(nodes), d, l, present)
}

// ownsStringData tells whether the current path is data.<key> of a Secret and
// Outpost's Apply entry owns stringData.<key>.
func (w *walker) ownsStringData() bool {
	if !w.secret || w.own < 0 || len(w.path) != 2 || w.path[0].name != "data" || w.path[1].kind != fieldElem {
		return false
	}
	sd, _ := w.entries[w.own].fields["f:stringData"].(map[string]any)
	n, _ := sd["f:"+w.path[1].name].(map[string]any)
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
	fd := FieldDrift{Path: formatPath(w.path)}
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
	if w.secret && secretValuePath(w.path) {
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

// lastAppliedAnnotation is kubectl's copy of the applied object: on a Secret it holds
// the Secret's data.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// secretValuePath reports whether a path of a Secret holds (a copy of) its values:
// data, stringData, and the last-applied-configuration annotation.
func secretValuePath(p []pathElem) bool {
	if len(p) == 0 || p[0].kind != fieldElem {
		return false
	}
	switch p[0].name {
	case "data", "stringData":
		return true
	case "metadata":
		// metadata.annotations as a whole, or the annotation itself.
		return len(p) >= 2 && p[1].kind == fieldElem && p[1].name == "annotations" &&
			(len(p) == 2 || (p[2].kind == fieldElem && p[2].name == lastAppliedAnnotation))
	}
	return false
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
