package repo

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Built-in substitution variables. They are reserved: no vars map may define them.
const (
	VarAppName      = "APP_NAME"
	VarAppVersion   = "APP_VERSION"
	VarAppNamespace = "APP_NAMESPACE"
	VarClusterName  = "CLUSTER_NAME"
	// LabelVarPrefix prefixes the variable made from each cluster label (see LabelVar).
	LabelVarPrefix = "CLUSTER_LABEL_"
	// ReservedVarPrefix is reserved for future built-in variables.
	ReservedVarPrefix = "OUTPOST_"
)

var (
	varNameRe  = regexp.MustCompile(`^[_A-Za-z][_A-Za-z0-9]*$`)
	versionRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~:@/-]*$`)
	nonVarChar = regexp.MustCompile(`[^A-Za-z0-9_]`)
)

// InvalidError is a cluster or app name, or an app version, that breaks the
// repository contract's rule. It formats as Field, a space and Reason, e.g.
// `name "Web" is not a valid name: ...` or "version must not be empty", so a
// caller that knows what the value is names it: "cluster "+err.Error().
type InvalidError struct {
	// Field is what was checked: "name" or "version".
	Field string `json:"field"`
	// Value is the rejected value.
	Value string `json:"value"`
	// Reason says what is wrong, without naming Field, e.g. "must not be empty".
	Reason string `json:"reason"`
}

// Error formats as "field reason", e.g. "name must not be empty".
func (e *InvalidError) Error() string { return e.Field + " " + e.Reason }

// ValidateName checks a cluster or app name: a DNS-1123 label (lower-case
// alphanumerics and '-', at most 63 characters), and so never a path. It returns
// nil when the name is valid, else an *InvalidError saying what is wrong.
func ValidateName(name string) error {
	if reason := nameReason(name); reason != "" {
		return &InvalidError{Field: "name", Value: name, Reason: reason}
	}
	return nil
}

// nameReason says what is wrong with a name, "" when nothing is.
func nameReason(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case strings.ContainsAny(name, `/\`) || strings.Contains(name, ".."):
		return fmt.Sprintf("%q must not contain path characters ('/', '\\', '..')", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Sprintf("%q must not contain control characters", name)
	}
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Sprintf("%q is not a valid name: %s", name, strings.Join(msgs, "; "))
	}
	return ""
}

// ValidateVersion checks an app version: 1 to MaxVersionLen characters, starting
// with a letter or digit, then letters, digits and ._+~:@/- (no whitespace, no
// control characters, nothing that changes YAML meaning when substituted). It
// returns nil when the version is valid, else an *InvalidError.
func ValidateVersion(v string) error {
	if reason := versionReason(v); reason != "" {
		return &InvalidError{Field: "version", Value: v, Reason: reason}
	}
	return nil
}

// versionReason says what is wrong with a version, "" when nothing is.
func versionReason(v string) string {
	switch {
	case v == "":
		return "must not be empty"
	case len(v) > MaxVersionLen:
		return fmt.Sprintf("is %d characters long, more than the limit of %d", len(v), MaxVersionLen)
	case !versionRe.MatchString(v):
		return fmt.Sprintf("%q must start with a letter or digit and hold only letters, digits and ._+~:@/-", v)
	}
	return ""
}

// ValidateVarName checks a vars key: a shell-style identifier that is not
// reserved for a built-in variable.
func ValidateVarName(k string) string {
	switch {
	case !varNameRe.MatchString(k):
		return fmt.Sprintf("variable name %q must match %s", k, varNameRe)
	case k == VarAppName || k == VarAppVersion || k == VarAppNamespace || k == VarClusterName:
		return fmt.Sprintf("variable name %q is reserved for the built-in variable", k)
	case strings.HasPrefix(k, LabelVarPrefix) || strings.HasPrefix(k, ReservedVarPrefix):
		return fmt.Sprintf("variable name %q uses a reserved prefix (%s, %s)", k, LabelVarPrefix, ReservedVarPrefix)
	}
	return ""
}

// validateValue checks a vars or labels value: bounded, and no control
// characters (a newline would change the YAML it is substituted into).
func validateValue(v string) string {
	switch {
	case len(v) > MaxVarValueLen:
		return fmt.Sprintf("value is %d bytes long, more than the limit of %d", len(v), MaxVarValueLen)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "value must not contain control characters (newline, tab, ...)"
	}
	return ""
}

func checkVar(k, v string) string {
	if msg := ValidateVarName(k); msg != "" {
		return msg
	}
	return validateValue(v)
}

func checkLabel(k, v string) string {
	if msgs := content.IsLabelKey(k); len(msgs) > 0 {
		return fmt.Sprintf("label key %q is invalid: %s", k, strings.Join(msgs, "; "))
	}
	if msgs := content.IsLabelValue(v); len(msgs) > 0 {
		return fmt.Sprintf("label value %q is invalid: %s", v, strings.Join(msgs, "; "))
	}
	return ""
}

// LabelVar is the substitution variable that carries a cluster label:
// CLUSTER_LABEL_ followed by the key with every character other than a letter,
// digit or '_' replaced by '_'. Case is kept: "env" gives CLUSTER_LABEL_env,
// "topology.kubernetes.io/region" gives CLUSTER_LABEL_topology_kubernetes_io_region.
func LabelVar(key string) string {
	return LabelVarPrefix + nonVarChar.ReplaceAllString(key, "_")
}
