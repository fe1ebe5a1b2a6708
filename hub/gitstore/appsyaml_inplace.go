package gitstore

import (
	"bytes"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// The in-place edits splice the original bytes at positions yaml.v3 reports
// (1-based line, 1-based column counted in characters). Each returns ok=false
// when the layout is not one it knows; EditAppsFile then falls back to
// re-encoding, and checks the result of either way.

// editInPlace makes the edit by splicing the original bytes.
func (d *appsDoc) editInPlace(e AppsEdit, idx int) ([]byte, bool) {
	switch {
	case e.Remove:
		return d.removeEntry(idx)
	case idx >= 0 && d.entries[idx].verNode != nil:
		return d.replaceScalar(d.entries[idx].verNode, e.Version)
	case idx >= 0:
		return nil, false // an entry without version: rare and invalid, re-encode
	case d.root == nil:
		if len(d.doc.Content) > 0 {
			return nil, false // a root "~" or "null"
		}
		return d.appendText(d.newApps(e, 0)), true
	case d.apps == nil:
		if d.root.Style&yaml.FlowStyle != 0 || d.root.Column != 1 {
			return nil, false
		}
		return d.appendText(d.newApps(e, 0)), true
	case d.apps.Kind == yaml.SequenceNode && len(d.apps.Content) == 0:
		return d.fillEmptyFlowList(e)
	case d.apps.Kind == yaml.SequenceNode && d.apps.Style&yaml.FlowStyle == 0:
		return d.appendEntry(e)
	}
	return nil, false
}

// newApps is an "apps:" key with one entry, indented by indent.
func (d *appsDoc) newApps(e AppsEdit, indent int) string {
	return spaces(indent) + "apps:" + d.nl + d.newItem(e, indent+2, indent+4, true, yaml.DoubleQuotedStyle, false)
}

// newItem is a block (or flow, when flow is set) list item for e, its dash at
// column dash and its keys at column key (0-based byte columns).
func (d *appsDoc) newItem(e AppsEdit, dash, key int, nameFirst bool, verStyle yaml.Style, flow bool) string {
	name := "name: " + renderScalar(e.App, 0)
	ver := "version: " + renderScalar(e.Version, verStyle)
	first, second := name, ver
	if !nameFirst {
		first, second = ver, name
	}
	gap := spaces(max(key-dash-1, 1))
	if flow {
		return spaces(dash) + "-" + gap + "{" + first + ", " + second + "}" + d.nl
	}
	return spaces(dash) + "-" + gap + first + d.nl + spaces(key) + second + d.nl
}

func spaces(n int) string { return strings.Repeat(" ", n) }

// appendText appends s at the end of the file, after a line break.
func (d *appsDoc) appendText(s string) []byte {
	out := bytes.Clone(d.data)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, d.nl...)
	}
	return append(out, s...)
}

// splice replaces data[from:to] with s.
func (d *appsDoc) splice(from, to int, s string) []byte {
	out := make([]byte, 0, len(d.data)-(to-from)+len(s))
	out = append(out, d.data[:from]...)
	out = append(out, s...)
	return append(out, d.data[to:]...)
}

// offset converts a yaml.v3 position to a byte offset.
func (d *appsDoc) offset(line, col int) (int, bool) {
	if line < 1 || line > len(d.lines) || col < 1 {
		return 0, false
	}
	off := d.lines[line-1]
	for i := 1; i < col; i++ {
		if off >= len(d.data) || d.data[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(d.data[off:])
		off += size
	}
	return off, true
}

// lineText returns line n (1-based) without its line ending.
func (d *appsDoc) lineText(n int) string {
	start := d.lines[n-1]
	end := len(d.data)
	if n < len(d.lines) {
		end = d.lines[n]
	}
	return strings.TrimRight(string(d.data[start:end]), "\r\n")
}

// lineStart returns the byte offset of line n, or len(data) past the last line.
func (d *appsDoc) lineStart(n int) int {
	if n > len(d.lines) {
		return len(d.data)
	}
	return d.lines[n-1]
}

// lineKind classifies a line: blank, comment (first non-space is '#') or
// content, with its indentation in bytes.
func (d *appsDoc) lineKind(n int) (blank, comment bool, indent int) {
	s := d.lineText(n)
	t := strings.TrimLeft(s, " ")
	indent = len(s) - len(t)
	t = strings.TrimSpace(t)
	return t == "", strings.HasPrefix(t, "#"), indent
}

func (d *appsDoc) isBlank(n int) bool {
	blank, _, _ := d.lineKind(n)
	return blank
}

// replaceScalar rewrites the scalar node n, on one line, to v in n's quoting
// style (plain only when v reads back as a string).
func (d *appsDoc) replaceScalar(n *yaml.Node, v string) ([]byte, bool) {
	from, ok := d.offset(n.Line, n.Column)
	if !ok {
		return nil, false
	}
	to, ok := d.scalarEnd(from, n)
	if !ok {
		return nil, false
	}
	return d.splice(from, to, renderScalar(v, n.Style)), true
}

// scalarEnd finds where the scalar n starting at from ends, and checks that the
// text there is n.
func (d *appsDoc) scalarEnd(from int, n *yaml.Node) (int, bool) {
	data := d.data
	if from >= len(data) {
		return 0, false
	}
	end := -1
	switch {
	case n.Style&yaml.TaggedStyle != 0, n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, false
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := from + 1; i < len(data) && data[from] == '"' && data[i] != '\n'; i++ {
			if data[i] == '\\' {
				i++
			} else if data[i] == '"' {
				end = i + 1
				break
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := from + 1; i < len(data) && data[from] == '\'' && data[i] != '\n'; i++ {
			if data[i] == '\'' {
				if i+1 < len(data) && data[i+1] == '\'' {
					i++
					continue
				}
				end = i + 1
				break
			}
		}
	default:
		i := from
		for i < len(data) && !bytes.ContainsRune([]byte("\r\n,]}"), rune(data[i])) {
			if (data[i] == ' ' || data[i] == '\t') && i+1 < len(data) && data[i+1] == '#' {
				break
			}
			i++
		}
		for i > from && (data[i-1] == ' ' || data[i-1] == '\t') {
			i--
		}
		if string(data[from:i]) != n.Value {
			return 0, false
		}
		return i, true
	}
	if end < 0 {
		return 0, false
	}
	var s string
	if err := yaml.Unmarshal(data[from:end], &s); err != nil || s != n.Value {
		return 0, false
	}
	return end, true
}

// dashColumn returns the byte column of the '-' that starts the block list
// item whose content starts at (line, col), when only spaces precede it.
func (d *appsDoc) dashColumn(item *yaml.Node) (dash, key int, ok bool) {
	off, ok := d.offset(item.Line, item.Column)
	if !ok {
		return 0, 0, false
	}
	start := d.lines[item.Line-1]
	key = off - start
	i := off - 1
	for i >= start && d.data[i] == ' ' {
		i--
	}
	if i < start || d.data[i] != '-' {
		return 0, 0, false
	}
	dash = i - start
	if strings.TrimLeft(string(d.data[start:i]), " ") != "" {
		return 0, 0, false
	}
	return dash, key, true
}

// itemLastLine returns the last line of the block list item starting on line
// start with its dash at column dash: the last following line, before the first
// content line indented at most dash, that is content or a comment indented more
// than dash.
func (d *appsDoc) itemLastLine(start, dash int) int {
	last := start
	for n := start + 1; n <= len(d.lines); n++ {
		blank, comment, indent := d.lineKind(n)
		switch {
		case blank:
		case indent > dash:
			last = n
		case comment:
		default:
			return last
		}
	}
	return last
}

// ownStart returns the first line of item i: its dash line, extended upward over
// a comment block right above it at the dash's indentation (a comment about the
// whole list sits above "apps:" or at the key's indentation).
func (d *appsDoc) ownStart(i, dash int) int {
	start := d.apps.Content[i].Line
	stop := d.appsKey.Line
	if i > 0 {
		stop = d.apps.Content[i-1].Line
	}
	for n := start - 1; n > stop; n-- {
		blank, comment, indent := d.lineKind(n)
		if blank || !comment || indent != dash {
			break
		}
		start = n
	}
	return start
}

// blockItems returns the dash column shared by every item of a block apps list,
// with each item's key column; ok is false for any other layout.
func (d *appsDoc) blockItems() (dash int, keys []int, ok bool) {
	if d.apps.Style&yaml.FlowStyle != 0 || len(d.apps.Content) == 0 {
		return 0, nil, false
	}
	for i, item := range d.apps.Content {
		dc, kc, ok := d.dashColumn(item)
		if !ok || (i > 0 && dc != dash) || (i > 0 && item.Line <= d.apps.Content[i-1].Line) {
			return 0, nil, false
		}
		dash = dc
		keys = append(keys, kc)
	}
	return dash, keys, true
}

// appendEntry appends an entry after the last one of a block list, in its style.
func (d *appsDoc) appendEntry(e AppsEdit) ([]byte, bool) {
	dash, keys, ok := d.blockItems()
	if !ok {
		return nil, false
	}
	last := d.entries[len(d.entries)-1]
	style := yaml.Style(yaml.DoubleQuotedStyle)
	if last.verNode != nil {
		style = last.verNode.Style
	}
	flow := last.item.Style&yaml.FlowStyle != 0
	item := d.newItem(e, dash, keys[len(keys)-1], last.nameFirst, style, flow)
	end := d.itemLastLine(last.item.Line, dash)
	at := d.lineStart(end + 1)
	if at == len(d.data) && len(d.data) > 0 && d.data[len(d.data)-1] != '\n' {
		item = d.nl + item
	}
	return d.splice(at, at, item), true
}

// fillEmptyFlowList turns "apps: []" into a block list with one entry.
func (d *appsDoc) fillEmptyFlowList(e AppsEdit) ([]byte, bool) {
	if d.apps.Line != d.appsKey.Line || d.appsKey.Style != 0 {
		return nil, false
	}
	from, ok := d.offset(d.apps.Line, d.apps.Column)
	if !ok || d.data[from] != '[' {
		return nil, false
	}
	to := from + 1
	for to < len(d.data) && d.data[to] == ' ' {
		to++
	}
	if to >= len(d.data) || d.data[to] != ']' {
		return nil, false
	}
	to++
	for from > 0 && d.data[from-1] == ' ' {
		from--
	}
	keyOff, ok := d.offset(d.appsKey.Line, d.appsKey.Column)
	if !ok {
		return nil, false
	}
	indent := keyOff - d.lines[d.appsKey.Line-1]
	rest := d.lineText(d.apps.Line)[to-d.lines[d.apps.Line-1]:]
	if t := strings.TrimSpace(rest); t != "" && !strings.HasPrefix(t, "#") {
		return nil, false
	}
	lineEnd := d.lineStart(d.apps.Line + 1)
	item := d.newItem(e, indent+2, indent+4, true, yaml.DoubleQuotedStyle, false)
	tail := string(d.data[to:lineEnd])
	if !strings.HasSuffix(tail, "\n") {
		tail += d.nl
	}
	return d.splice(from, lineEnd, tail+item), true
}

// removeEntry deletes the lines of entry idx of a block list; removing the only
// entry leaves "apps: []".
func (d *appsDoc) removeEntry(idx int) ([]byte, bool) {
	dash, _, ok := d.blockItems()
	if !ok {
		return nil, false
	}
	n := len(d.apps.Content)
	from := d.ownStart(idx, dash)
	var to int // last line removed
	if idx == n-1 {
		to = d.itemLastLine(d.apps.Content[idx].Line, dash)
		// The blank lines that separated it from the previous entry go too.
		for idx > 0 && from > 1 && d.isBlank(from-1) {
			from--
		}
	} else {
		to = d.ownStart(idx+1, dash) - 1
		// Keep a blank line that separated this entry from the next one only
		// when none separated it from the previous one.
		if idx > 0 && !d.isBlank(from-1) {
			for to > from {
				if !d.isBlank(to) {
					break
				}
				to--
			}
		}
	}
	out := d.splice(d.lineStart(from), d.lineStart(to+1), "")
	if n > 1 {
		return out, true
	}
	// The list is now empty: "apps:" must become "apps: []".
	if d.appsKey.Style != 0 || d.appsKey.Line >= d.apps.Content[0].Line {
		return nil, false
	}
	keyOff, ok := d.offset(d.appsKey.Line, d.appsKey.Column)
	if !ok {
		return nil, false
	}
	colon := keyOff + len(d.appsKey.Value)
	for colon < len(out) && out[colon] == ' ' {
		colon++
	}
	if colon >= len(out) || out[colon] != ':' {
		return nil, false
	}
	colon++
	res := make([]byte, 0, len(out)+3)
	res = append(res, out[:colon]...)
	res = append(res, " []"...)
	return append(res, out[colon:]...), true
}
