package render

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/fluxcd/pkg/envsubst"
	yaml "go.yaml.in/yaml/v3"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/resource"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// SubstituteAnnotation, set to "disabled" as a label or annotation of an
// object, turns substitution off for that object (the key Flux uses).
const SubstituteAnnotation = "kustomize.toolkit.fluxcd.io/substitute"

// maxExpandedObject bounds the worst-case size of one object after
// substitution (its size plus every '$' replaced by the longest value), so a
// manifest with many references cannot make substitution allocate without bound.
const maxExpandedObject = 64 << 20

// Vars returns the substitution variables of app on cluster. Precedence, lowest
// first (a later source overrides an earlier one):
//  1. cluster labels, as CLUSTER_LABEL_<key> (see repo.LabelVar);
//  2. cluster vars (cluster.yaml);
//  3. app vars (the app's entry in apps.yaml);
//  4. built-ins APP_NAME, APP_VERSION, APP_NAMESPACE (app.yaml namespace, may be
//     empty) and CLUSTER_NAME.
//
// The loader refuses vars named like a built-in or with the CLUSTER_LABEL_ or
// OUTPOST_ prefix, so in a loaded repository only 2 and 3 can overlap.
func Vars(cluster *repo.ClusterSpec, app *repo.App) map[string]string {
	vars := make(map[string]string, len(cluster.Labels)+len(cluster.Vars)+len(app.Vars)+4)
	for k, v := range cluster.Labels {
		vars[repo.LabelVar(k)] = v
	}
	maps.Copy(vars, cluster.Vars)
	maps.Copy(vars, app.Vars)
	vars[repo.VarAppName] = app.Name
	vars[repo.VarAppVersion] = app.Version
	vars[repo.VarAppNamespace] = app.Config.Namespace
	vars[repo.VarClusterName] = cluster.Name
	return vars
}

// substituter turns built resources into objects, running post-build
// substitution with fluxcd's envsubst in strict mode (an undefined variable
// without a default is an error).
//
// It substitutes the object's YAML as kustomize holds it, with the source's
// quoting kept and comments dropped, and parses the result with the same YAML
// 1.2 parser kustomize uses. So "${n}" (quoted) stays a string and ${n} (plain)
// takes the value's YAML type, and a ${VAR} in a comment is ignored. (fluxcd's
// SubstituteVariables goes through a JSON round trip first, which loses the
// quotes: there "${n}" with n=3 becomes the number 3, and version "1.0" the
// number 1.)
//
// The app's substitute mode decides what an undefined variable does: strict fails,
// defined leaves the reference as written (see escapeUndefined), off skips
// substitution altogether.
type substituter struct {
	vars    map[string]string
	maxVal  int                 // length of the longest value
	mode    repo.SubstituteMode // "" is strict
	appFile string              // "apps/<app>/app.yaml", named in errors
}

func newSubstituter(vars map[string]string, mode repo.SubstituteMode, appFile string) *substituter {
	maxVal := 0
	for _, v := range vars {
		maxVal = max(maxVal, len(v))
	}
	return &substituter{vars: vars, maxVal: maxVal, mode: mode, appFile: appFile}
}

// undefinedVar extracts the name from envsubst's strict-mode error.
var undefinedVar = regexp.MustCompile(`variable not set \(strict mode\): "([^"]*)"`)

// object returns res as an unstructured object's content, substituted unless it
// holds no '$' or has substitution disabled.
func (s *substituter) object(res *resource.Resource) (map[string]any, error) {
	if s.mode == repo.SubstituteOff || disabled(res) || !hasDollar(res.YNode()) {
		return plainObject(res)
	}
	node := kyaml.CopyYNode(res.YNode())
	dropComments(node)
	text, err := kyaml.String(node)
	if err != nil {
		return nil, err
	}
	out, err := s.text(text, "object")
	if err != nil {
		return nil, err
	}
	return parseSubstituted(out)
}

// plainObject returns res as an unstructured object's content, not substituted.
func plainObject(res *resource.Resource) (map[string]any, error) {
	j, err := res.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return decodeJSON(j)
}

// text substitutes the variables in text (an object's YAML, or a Helm app's values)
// as the app's substitute mode says; what names the text in the size error.
func (s *substituter) text(text, what string) (string, error) {
	if s.mode == repo.SubstituteOff || !strings.Contains(text, "$") {
		return text, nil
	}
	refs := strings.Count(text, "$")
	if worst := len(text) + refs*s.maxVal; worst > maxExpandedObject {
		return "", fmt.Errorf("%d variable references could expand the %s to %d bytes, more than the limit of %d", refs, what, worst, maxExpandedObject)
	}
	defined := s.mode == repo.SubstituteDefined
	if defined {
		text = escapeUndefined(text, s.vars)
	}
	out, err := envsubst.Eval(text, func(name string) (string, bool) {
		v, ok := s.vars[name]
		// In defined mode only a reference nested in the arguments of a defined
		// one (${A/x/${B}}) can still name an undefined variable: it is empty.
		return v, ok || defined
	})
	if err != nil {
		return "", s.substError(err)
	}
	return out, nil
}

// parseSubstituted parses substituted YAML (one mapping) into JSON types.
func parseSubstituted(out string) (map[string]any, error) {
	if err := repo.CheckYAMLExpansion([]byte(out)); err != nil {
		return nil, fmt.Errorf("after substitution: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("after substitution the object is not valid YAML (does a value change the YAML structure?): %w", err)
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("after substitution: %w", err)
	}
	return decodeJSON(j)
}

func (s *substituter) substError(err error) error {
	if m := undefinedVar.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("undefined variable %q (define it in cluster.yaml vars or the app's apps.yaml vars, give a default with ${%s:=value}, write $${%s} for a literal, or set \"substitute: defined\" in %s to leave undefined variables as written)", m[1], m[1], m[1], s.appFile)
	}
	return fmt.Errorf("substitution: %w", err)
}

// escapeUndefined rewrites text so that envsubst leaves every reference to a
// variable not in vars exactly as written: each '$' of such a ${...} (up to its
// matching '}', nested references included) is doubled, and envsubst turns "$$"
// back into '$'. Everything else is left for envsubst as in strict mode ("$$" stays
// an escape, references to defined variables are replaced, $NAME without braces is
// text), so a manifest whose references all name defined variables renders the
// same in both modes. A reference with a default (${NAME:-x}) to an undefined
// variable is left as written too (where strict mode gives x): in a shell script
// the default is the script's, not Outpost's. A
// reference nested in the arguments of a defined one is evaluated by envsubst, so
// there an undefined variable is empty.
func escapeUndefined(text string, vars map[string]string) string {
	var b strings.Builder
	b.Grow(len(text) + 16)
	for i := 0; i < len(text); {
		switch {
		case strings.HasPrefix(text[i:], "$$"):
			b.WriteString("$$")
			i += 2
		case strings.HasPrefix(text[i:], "${"):
			name := refName(text[i+2:])
			if _, ok := vars[name]; ok {
				b.WriteString("${")
				i += 2
				continue
			}
			end := closingBrace(text, i+2)
			if end < 0 {
				end = i + 1 // unterminated: escape the "${" alone
			}
			b.WriteString(strings.ReplaceAll(text[i:end+1], "$", "$$"))
			i = end + 1
		default:
			b.WriteByte(text[i])
			i++
		}
	}
	return b.String()
}

// refName returns the variable name at the start of s (the text after "${"),
// skipping a length operator '#'.
func refName(s string) string {
	s = strings.TrimPrefix(s, "#")
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n]
}

// closingBrace returns the index of the '}' that closes the reference whose body
// starts at text[from], counting nested "${", or -1.
func closingBrace(text string, from int) int {
	depth := 1
	for i := from; i < len(text); i++ {
		switch {
		case text[i] == '$' && i+1 < len(text) && text[i+1] == '{':
			depth++
			i++
		case text[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// decodeJSON decodes an object with the number types unstructured expects
// (int64, float64), so that DeepCopy and the apply step work on it.
func decodeJSON(j []byte) (map[string]any, error) {
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func disabled(res *resource.Resource) bool {
	return res.GetLabels()[SubstituteAnnotation] == "disabled" || res.GetAnnotations()[SubstituteAnnotation] == "disabled"
}

// hasDollar reports whether any scalar (key or value) of n contains '$'.
func hasDollar(n *yaml.Node) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return strings.IndexByte(n.Value, '$') >= 0
	}
	for _, c := range n.Content {
		if hasDollar(c) {
			return true
		}
	}
	return false
}

func dropComments(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		dropComments(c)
	}
}
