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
type substituter struct {
	vars   map[string]string
	maxVal int // length of the longest value
}

func newSubstituter(vars map[string]string) *substituter {
	maxVal := 0
	for _, v := range vars {
		maxVal = max(maxVal, len(v))
	}
	return &substituter{vars: vars, maxVal: maxVal}
}

// undefinedVar extracts the name from envsubst's strict-mode error.
var undefinedVar = regexp.MustCompile(`variable not set \(strict mode\): "([^"]*)"`)

// object returns res as an unstructured object's content, substituted unless it
// holds no '$' or has substitution disabled.
func (s *substituter) object(res *resource.Resource) (map[string]any, error) {
	if disabled(res) || !hasDollar(res.YNode()) {
		j, err := res.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return decodeJSON(j)
	}
	node := kyaml.CopyYNode(res.YNode())
	dropComments(node)
	text, err := kyaml.String(node)
	if err != nil {
		return nil, err
	}
	refs := strings.Count(text, "$")
	if worst := len(text) + refs*s.maxVal; worst > maxExpandedObject {
		return nil, fmt.Errorf("%d variable references could expand the object to %d bytes, more than the limit of %d", refs, worst, maxExpandedObject)
	}
	out, err := envsubst.Eval(text, func(name string) (string, bool) {
		v, ok := s.vars[name]
		return v, ok
	})
	if err != nil {
		return nil, substError(err)
	}
	return parseSubstituted(out)
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

func substError(err error) error {
	if m := undefinedVar.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("undefined variable %q (define it in cluster.yaml vars or the app's apps.yaml vars, give a default with ${%s:=value}, or write $${%s} for a literal)", m[1], m[1], m[1])
	}
	return fmt.Errorf("substitution: %w", err)
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
