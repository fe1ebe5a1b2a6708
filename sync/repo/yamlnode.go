package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// The contract files are decoded from yaml.v3 nodes by hand rather than with
// Decoder.KnownFields: nodes carry line numbers, so every error names the line and
// the field path, and scalars are taken as written ("1.10" stays "1.10").

// yamlErrLine matches yaml.v3 syntax errors, which carry the line in the text.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument parses data as exactly one YAML document and returns its root
// node, or nil when the file holds no document. Aliases are refused.
func parseDocument(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, err)
		}
		return nil, errAt(file, extra.Line, "", "must hold one YAML document, found another")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if err := refuseAliases(file, root); err != nil {
		return nil, err
	}
	return root, nil
}

// syntaxError turns a yaml.v3 error into an *Error with the line when known.
func syntaxError(file string, err error) *Error {
	if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2], Err: err}
	}
	return &Error{File: file, Msg: "invalid YAML: " + err.Error(), Err: err}
}

// refuseAliases walks the tree once; it never follows an alias, so it is linear in
// the file's size even for a billion-laughs input.
func refuseAliases(file string, n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return errAt(file, n.Line, "", "YAML anchors and aliases are not allowed in this file")
	}
	for _, c := range n.Content {
		if err := refuseAliases(file, c); err != nil {
			return err
		}
	}
	return nil
}

// CheckYAMLExpansion parses every document of data and returns an error when the
// documents would expand to more than MaxYAMLNodes nodes once aliases are resolved.
// Sizes are memoized per node, so the check is linear in the input even when the
// expansion is exponential. Data that is not valid YAML is not this check's
// business and passes (the consumer's own parser will report it).
func CheckYAMLExpansion(data []byte) error {
	if !bytes.ContainsRune(data, '*') || !bytes.ContainsRune(data, '&') {
		return nil // no alias can exist without both characters
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	total := 0
	memo := map[*yaml.Node]int{}
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return nil // EOF or a syntax error: nothing (more) to expand
		}
		total += expandedSize(&doc, memo)
		if total > MaxYAMLNodes {
			return fmt.Errorf("YAML aliases expand to more than %d nodes (alias bomb?)", MaxYAMLNodes)
		}
	}
}

// expandedSize counts the nodes of n with aliases expanded, capped just above
// MaxYAMLNodes so the sums cannot overflow.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if s, ok := memo[n]; ok {
		return s
	}
	memo[n] = MaxYAMLNodes + 1 // an alias cycle counts as too big
	size := 1
	if n.Kind == yaml.AliasNode {
		size += expandedSize(n.Alias, memo)
	}
	for _, c := range n.Content {
		size += expandedSize(c, memo)
		if size > MaxYAMLNodes {
			size = MaxYAMLNodes + 1
			break
		}
	}
	memo[n] = size
	return size
}

// node is a yaml node together with the file and field path it was found at; the
// helpers below decode it strictly and produce *Error values that name both.
type node struct {
	file string
	path string
	n    *yaml.Node
}

func (x node) errf(format string, args ...any) *Error {
	line := 0
	if x.n != nil {
		line = x.n.Line
	}
	return errAt(x.file, line, x.path, format, args...)
}

func (x node) child(path string, n *yaml.Node) node {
	if x.path != "" && path != "" && path[0] != '[' {
		path = x.path + "." + path
	} else {
		path = x.path + path
	}
	return node{file: x.file, path: path, n: n}
}

func (x node) isNull() bool {
	return x.n == nil || (x.n.Kind == yaml.ScalarNode && x.n.ShortTag() == "!!null")
}

// fields calls fn for every key of a mapping, in file order. It refuses
// non-mappings, non-scalar and duplicate keys, and keys fn does not know (fn
// returns false for an unknown key).
func (x node) fields(fn func(key string, v node) (bool, error)) error {
	if x.n.Kind != yaml.MappingNode {
		return x.errf("must be a mapping, got %s", kindName(x.n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(x.n.Content); i += 2 {
		k, v := x.n.Content[i], x.n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return node{file: x.file, path: x.path, n: k}.errf("mapping keys must be strings")
		}
		kx := x.child(k.Value, v)
		if seen[k.Value] {
			return node{file: x.file, path: kx.path, n: k}.errf("duplicate key")
		}
		seen[k.Value] = true
		known, err := fn(k.Value, kx)
		if err != nil {
			return err
		}
		if !known {
			return node{file: x.file, path: kx.path, n: k}.errf("unknown field")
		}
	}
	return nil
}

// str decodes a scalar as written. Any scalar type is accepted (version: 1.10 is
// "1.10"); null decodes to "".
func (x node) str() (string, error) {
	if x.isNull() {
		return "", nil
	}
	if x.n.Kind != yaml.ScalarNode {
		return "", x.errf("must be a string, got %s", kindName(x.n))
	}
	if t := x.n.ShortTag(); t != "" && t[0] == '!' && (len(t) < 2 || t[1] != '!') {
		return "", x.errf("custom YAML tag %s is not allowed", t)
	}
	return x.n.Value, nil
}

// boolean decodes true or false; null keeps def.
func (x node) boolean(def bool) (bool, error) {
	if x.isNull() {
		return def, nil
	}
	if x.n.Kind != yaml.ScalarNode || x.n.ShortTag() != "!!bool" {
		return false, x.errf("must be true or false, got %q", x.n.Value)
	}
	var b bool
	if err := x.n.Decode(&b); err != nil {
		return false, x.errf("must be true or false, got %q", x.n.Value)
	}
	return b, nil
}

// duration decodes a Go duration ("90s", "5m"); null keeps def.
func (x node) duration(def, max time.Duration) (time.Duration, error) {
	if x.isNull() {
		return def, nil
	}
	s, err := x.str()
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, x.errf("must be a duration like 90s or 5m, got %q", s)
	}
	if d <= 0 || d > max {
		return 0, x.errf("must be more than 0s and at most %s, got %s", max, s)
	}
	return d, nil
}

// list calls fn for every item of a sequence; null is an empty list.
func (x node) list(fn func(i int, v node) error) error {
	if x.isNull() {
		return nil
	}
	if x.n.Kind != yaml.SequenceNode {
		return x.errf("must be a list, got %s", kindName(x.n))
	}
	for i, c := range x.n.Content {
		if err := fn(i, x.child("["+strconv.Itoa(i)+"]", c)); err != nil {
			return err
		}
	}
	return nil
}

// stringMap decodes a mapping of scalars, checking each key and value with
// check; null is an empty (nil) map.
func (x node) stringMap(check func(k, v string) string) (map[string]string, error) {
	if x.isNull() {
		return nil, nil
	}
	if x.n.Kind == yaml.MappingNode && len(x.n.Content)/2 > MaxVars {
		return nil, x.errf("has %d entries, more than the limit of %d", len(x.n.Content)/2, MaxVars)
	}
	out := map[string]string{}
	err := x.fields(func(k string, v node) (bool, error) {
		s, err := v.str()
		if err != nil {
			return true, err
		}
		if msg := check(k, s); msg != "" {
			return true, v.errf("%s", msg)
		}
		out[k] = s
		return true, nil
	})
	return out, err
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "an unexpected node"
	}
}
