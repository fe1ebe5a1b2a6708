package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"

	yaml "go.yaml.in/yaml/v3"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// AppsEdit is one change of a clusters/<cluster>/apps.yaml file.
type AppsEdit struct {
	// App is the name of the entry to change.
	App string `json:"app"`
	// Version is the version to set; unused with Remove.
	Version string `json:"version,omitempty"`
	// Remove deletes the app's entry instead of setting its version.
	Remove bool `json:"remove,omitempty"`
	// SetVars replaces the entry's vars with Vars (and removes them when Vars
	// is empty); unused with Remove. Without it the vars stay as they are.
	SetVars bool `json:"setVars,omitempty"`
	// Vars are the vars to set with SetVars.
	Vars map[string]string `json:"vars,omitempty"`
}

// AppsChange says what EditAppsFile did.
type AppsChange struct {
	// Before is the app's version before the edit; empty when it was not listed.
	Before string `json:"before,omitempty"`
	// After is the app's version after the edit; empty after a removal.
	After string `json:"after,omitempty"`
	// Changed is false when the file already said what the edit asked for; the
	// data is then returned unchanged.
	Changed bool `json:"changed"`
	// Reformatted is true when the edit could not be made in place and the whole
	// file was re-encoded by yaml.v3 (comments kept, blank lines and spacing not).
	Reformatted bool `json:"reformatted,omitempty"`
}

// EditAppsFile applies one edit to the content of an apps.yaml file and returns
// the new content. It is pure: no I/O, same input, same output.
//
// Setting the version of a listed app rewrites only the version scalar (its
// quoting style, the line's comment and everything else stay); setting the
// version of an app not listed appends an entry after the last one, in the style
// of the last one; removing deletes the entry's lines (and a comment block right
// above it). When the file's layout does not allow an edit in place (flow-style
// lists, multi-line scalars, tags), the document is edited as a yaml.v3 node tree
// and re-encoded, which keeps comments and order but not blank lines or spacing.
// Either way the result is checked: decoded, it must equal the input decoded with
// the edit applied, or EditAppsFile fails.
//
// Errors: *ValidationError for an invalid app name or version; *ContentError
// (File "apps.yaml") for a file that is not an apps list; *NotFoundError when
// removing an app the file does not list.
func EditAppsFile(data []byte, e AppsEdit) ([]byte, AppsChange, error) {
	if err := validateName(InputApp, e.App); err != nil {
		return nil, AppsChange{}, err
	}
	if !e.Remove {
		if err := validateVersion(e.Version); err != nil {
			return nil, AppsChange{}, err
		}
	}
	d, err := parseAppsDoc(data)
	if err != nil {
		return nil, AppsChange{}, err
	}
	ch := AppsChange{}
	idx := d.find(e.App)
	if idx >= 0 {
		ch.Before = d.entries[idx].version
	}
	switch {
	case e.Remove && idx < 0:
		return nil, ch, &NotFoundError{Kind: KindApp, Name: e.App, Detail: "not listed in apps.yaml"}
	case !e.Remove && idx >= 0 && d.entries[idx].hasVersion && ch.Before == e.Version &&
		(!e.SetVars || sameVars(d.entries[idx].item, e.Vars)):
		ch.After = e.Version
		return data, ch, nil
	}
	if !e.Remove {
		ch.After = e.Version
	}
	ch.Changed = true
	if e.SetVars && ((idx >= 0 && sameVars(d.entries[idx].item, e.Vars)) || (idx < 0 && len(e.Vars) == 0)) {
		e.SetVars = false // the vars stay as they are: only the version changes
	}
	// New vars go through the node tree (comments kept, spacing not); a version
	// edit alone is made in place.
	if e.SetVars {
		// fall through to editNodes
	} else if out, ok := d.editInPlace(e, idx); ok {
		if verifyEdit(data, out, e) == nil {
			return out, ch, nil
		}
	}
	out, err := d.editNodes(e, idx)
	if err != nil {
		return nil, ch, err
	}
	if err := verifyEdit(data, out, e); err != nil {
		return nil, ch, &ContentError{File: repo.AppsFile, Msg: "the edited file does not read back as expected: " + err.Error()}
	}
	ch.Reformatted = true
	return out, ch, nil
}

// appEntry is one item of the apps list as the edit sees it.
type appEntry struct {
	name       string
	version    string
	hasVersion bool
	item       *yaml.Node // the item's mapping node
	nameNode   *yaml.Node // value of "name"
	verNode    *yaml.Node // value of "version", nil when missing
	nameFirst  bool       // "name" comes before "version" in the item
	// fingerprint is a canonical text of the whole entry; set by Store.listedApps.
	fingerprint string
}

// appsDoc is a parsed apps.yaml with what the edits need to find their way in
// the original bytes.
type appsDoc struct {
	data    []byte
	lines   []int  // byte offset of the start of each line
	nl      string // line ending of the file: "\n" or "\r\n"
	doc     *yaml.Node
	root    *yaml.Node // root mapping; nil for an empty document
	appsKey *yaml.Node // the "apps" key; nil when missing
	apps    *yaml.Node // its value; nil when missing
	entries []appEntry
}

// appsFileError is a *ContentError about the file's shape.
func appsFileError(format string, args ...any) error {
	return &ContentError{File: repo.AppsFile, Msg: fmt.Sprintf(format, args...)}
}

// parseAppsDoc parses data as one YAML document holding a mapping whose "apps"
// key is a list of mappings with a string "name" (or is missing, null or empty).
func parseAppsDoc(data []byte) (*appsDoc, error) {
	d := &appsDoc{data: data, nl: "\n"}
	if i := bytes.IndexByte(data, '\n'); i > 0 && data[i-1] == '\r' {
		d.nl = "\r\n"
	}
	d.lines = append(d.lines, 0)
	for i, c := range data {
		if c == '\n' && i+1 < len(data) {
			d.lines = append(d.lines, i+1)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ContentError{File: repo.AppsFile, Msg: "invalid YAML: " + err.Error(), Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, appsFileError("must hold exactly one YAML document")
	}
	d.doc = &doc
	if len(doc.Content) == 0 {
		return d, nil
	}
	root := doc.Content[0]
	if hasAnchors(root) {
		return nil, appsFileError("YAML anchors and aliases are not supported")
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return d, nil
	case root.Kind != yaml.MappingNode:
		return nil, appsFileError("must be a mapping with an apps list")
	}
	d.root = root
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "apps" && root.Content[i].Kind == yaml.ScalarNode {
			d.appsKey, d.apps = root.Content[i], root.Content[i+1]
			break
		}
	}
	if d.apps == nil || (d.apps.Kind == yaml.ScalarNode && d.apps.Tag == "!!null") {
		return d, nil
	}
	if d.apps.Kind != yaml.SequenceNode {
		return nil, appsFileError("apps must be a list")
	}
	for i, item := range d.apps.Content {
		e, err := parseEntry(item)
		if err != nil {
			return nil, appsFileError("apps[%d]: %s", i, err)
		}
		if d.find(e.name) >= 0 {
			return nil, appsFileError("apps[%d]: duplicate app %q", i, e.name)
		}
		d.entries = append(d.entries, e)
	}
	return d, nil
}

func parseEntry(item *yaml.Node) (appEntry, error) {
	e := appEntry{item: item}
	if item.Kind != yaml.MappingNode {
		return e, errors.New("must be a mapping with name and version")
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode {
				return e, errors.New("name must be a string")
			}
			e.name, e.nameNode = v.Value, v
			e.nameFirst = e.verNode == nil
		case "version":
			if v.Kind != yaml.ScalarNode {
				return e, errors.New("version must be a string")
			}
			e.version, e.verNode, e.hasVersion = v.Value, v, true
		}
	}
	if e.nameNode == nil {
		return e, errors.New("missing name")
	}
	return e, nil
}

// entryVars returns the vars of an apps.yaml entry (nil when it has none, or
// when they are not a mapping of strings).
func entryVars(item *yaml.Node) map[string]string {
	for i := 0; item != nil && i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value == "vars" {
			var vars map[string]string
			if item.Content[i+1].Decode(&vars) != nil {
				return nil
			}
			return vars
		}
	}
	return nil
}

// sameVars tells whether an entry's vars are exactly vars (none and empty are the
// same).
func sameVars(item *yaml.Node, vars map[string]string) bool {
	for i := 0; item != nil && i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value == "vars" {
			var cur map[string]string
			if item.Content[i+1].Decode(&cur) != nil {
				return false
			}
			return maps.Equal(cur, vars) && (len(cur) > 0 || len(vars) == 0)
		}
	}
	return len(vars) == 0
}

// setVarsNode replaces the vars of an entry's mapping node: a flow mapping of
// double-quoted strings in key order (the style of an existing block mapping is
// kept), or no vars key when vars is empty.
func setVarsNode(item *yaml.Node, vars map[string]string) {
	at := -1
	for i := 0; i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value == "vars" {
			at = i
		}
	}
	if len(vars) == 0 {
		if at >= 0 {
			item.Content = slices.Delete(item.Content, at, at+2)
		}
		return
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
	if at >= 0 && item.Content[at+1].Kind == yaml.MappingNode {
		m.Style = item.Content[at+1].Style
		m.LineComment = item.Content[at+1].LineComment
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		m.Content = append(m.Content, strNode(k, versionStyle(0, k)), strNode(vars[k], yaml.DoubleQuotedStyle))
	}
	if at >= 0 {
		item.Content[at+1] = m
		return
	}
	item.Content = append(item.Content, strNode("vars", 0), m)
}

func hasAnchors(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return true
	}
	return slices.ContainsFunc(n.Content, hasAnchors)
}

// find returns the index of the app's entry, or -1.
func (d *appsDoc) find(app string) int {
	return slices.IndexFunc(d.entries, func(e appEntry) bool { return e.name == app })
}

// editNodes is the fallback: edit the node tree and re-encode the document.
func (d *appsDoc) editNodes(e AppsEdit, idx int) ([]byte, error) {
	doc := d.doc
	if len(doc.Content) == 0 || d.root == nil {
		doc = &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
		if len(d.doc.Content) > 0 {
			doc.HeadComment = d.doc.Content[0].HeadComment
		}
	}
	root := doc.Content[0]
	apps := d.apps
	if d.root == nil || apps == nil {
		apps = nil
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "apps" {
				apps = root.Content[i+1]
			}
		}
		if apps == nil {
			apps = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "apps"}, apps)
		}
	}
	if apps.Kind != yaml.SequenceNode { // null
		*apps = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", LineComment: apps.LineComment}
	}
	switch {
	case e.Remove:
		apps.Content = slices.Delete(apps.Content, idx, idx+1)
		if len(apps.Content) == 0 {
			apps.Style = yaml.FlowStyle
		}
	case idx >= 0 && d.entries[idx].verNode != nil:
		v := d.entries[idx].verNode
		v.Value, v.Tag = e.Version, "!!str"
		v.Style = versionStyle(v.Style, e.Version)
	case idx >= 0:
		item := d.entries[idx].item
		item.Content = append(item.Content, strNode("version", 0), strNode(e.Version, versionStyle(yaml.DoubleQuotedStyle, e.Version)))
	default:
		item := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			strNode("name", 0), strNode(e.App, versionStyle(0, e.App)),
			strNode("version", 0), strNode(e.Version, versionStyle(yaml.DoubleQuotedStyle, e.Version)),
		}}
		apps.Style &^= yaml.FlowStyle
		apps.Content = append(apps.Content, item)
	}
	if e.SetVars && !e.Remove {
		item := apps.Content[len(apps.Content)-1]
		if idx >= 0 {
			item = d.entries[idx].item
		}
		setVarsNode(item, e.Vars)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, appsFileError("encode: %s", err)
	}
	if err := enc.Close(); err != nil {
		return nil, appsFileError("encode: %s", err)
	}
	return buf.Bytes(), nil
}

func strNode(v string, style yaml.Style) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: style}
}

// versionStyle returns the style to write v with, keeping style (double, single
// or plain) unless plain would not read back as the string v.
func versionStyle(style yaml.Style, v string) yaml.Style {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return yaml.DoubleQuotedStyle
	case style&yaml.SingleQuotedStyle != 0:
		return yaml.SingleQuotedStyle
	case plainSafe(v):
		return 0
	}
	return yaml.DoubleQuotedStyle
}

// renderScalar writes v in style. v is a validated name or version: no quote,
// backslash, space or control character, so no escaping is needed.
func renderScalar(v string, style yaml.Style) string {
	switch versionStyle(style, v) {
	case yaml.DoubleQuotedStyle:
		return `"` + v + `"`
	case yaml.SingleQuotedStyle:
		return `'` + v + `'`
	}
	return v
}

// plainSafe reports whether v written as a plain scalar reads back as the string
// v ("1.4.2" does; "1.10", "true", "null" and "2024-01-01" do not).
func plainSafe(v string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	s := n.Content[0]
	return s.Kind == yaml.ScalarNode && s.Tag == "!!str" && s.Style == 0 && s.Value == v
}

// verifyEdit checks that after, decoded, equals before decoded with e applied.
func verifyEdit(before, after []byte, e AppsEdit) error {
	var want, got any
	if err := yaml.Unmarshal(before, &want); err != nil {
		return err
	}
	if err := decodeOne(after, &got); err != nil {
		return err
	}
	want, err := applyDecoded(want, e)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(want, got) {
		return errors.New("content differs")
	}
	return nil
}

// decodeOne decodes exactly one document.
func decodeOne(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one document")
	}
	return nil
}

// applyDecoded applies e to a decoded apps.yaml.
func applyDecoded(doc any, e AppsEdit) (any, error) {
	if doc == nil {
		doc = map[string]any{}
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("root is not a string-keyed mapping")
	}
	var list []any
	if v, ok := root["apps"]; ok && v != nil {
		if list, ok = v.([]any); !ok {
			return nil, errors.New("apps is not a list")
		}
	}
	idx := slices.IndexFunc(list, func(item any) bool {
		m, ok := item.(map[string]any)
		return ok && m["name"] == e.App
	})
	switch {
	case e.Remove && idx >= 0:
		list = slices.Delete(slices.Clone(list), idx, idx+1)
	case e.Remove:
		return nil, fmt.Errorf("app %q not listed", e.App)
	case idx >= 0:
		list[idx].(map[string]any)["version"] = e.Version
	default:
		list = append(list, map[string]any{"name": e.App, "version": e.Version})
		idx = len(list) - 1
	}
	if e.SetVars && !e.Remove {
		m := list[idx].(map[string]any)
		delete(m, "vars")
		if len(e.Vars) > 0 {
			vars := map[string]any{}
			for k, v := range e.Vars {
				vars[k] = v
			}
			m["vars"] = vars
		}
	}
	if list == nil {
		list = []any{}
	}
	root["apps"] = list
	return root, nil
}
