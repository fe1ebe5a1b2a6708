package v1

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FieldError is a validation failure: Field is the JSON path of the offending field,
// e.g. apps[2].version, or the name of a query parameter or path segment.
type FieldError struct {
	// Field is the JSON path of the field.
	Field string
	// Message says what is wrong with it.
	Message string
}

// Error formats as "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Response returns the ErrorResponse the hub sends for e.
func (e *FieldError) Response() ErrorResponse {
	return ErrorResponse{Code: CodeInvalid, Message: e.Message, Field: e.Field}
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// join builds a field path: join("apps", 2, "version") == "apps[2].version".
func join(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b.WriteString("[")
			b.WriteString(strconv.Itoa(p))
			b.WriteString("]")
		case string:
			if b.Len() > 0 {
				b.WriteString(".")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// ValidateName checks a cluster or app name: a DNS-1123 label (1 to 63 lower-case
// letters, digits and '-', starting and ending with a letter or digit), so never a path.
func ValidateName(field, name string) error {
	if name == "" {
		return fieldErr(field, "must not be empty")
	}
	if msg := dnsLabel(name); msg != "" {
		return fieldErr(field, "%s is not a valid name: %s", quote(name), msg)
	}
	return nil
}

// ValidateVersion checks an app version: 1 to MaxVersionLen bytes, starting with a
// letter or digit, then letters, digits and ._+~:@/- (the repository contract's rule).
func ValidateVersion(field, v string) error {
	switch {
	case v == "":
		return fieldErr(field, "must not be empty")
	case len(v) > MaxVersionLen:
		return fieldErr(field, "is %d bytes long, more than the limit of %d", len(v), MaxVersionLen)
	case !isAlnum(v[0]):
		return fieldErr(field, "%s must start with a letter or digit", quote(v))
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && !strings.ContainsRune("._+~:@/-", rune(c)) {
			return fieldErr(field, "%s must hold only letters, digits and ._+~:@/-", quote(v))
		}
	}
	return nil
}

// ValidateRevision checks a Git revision: empty, or a full commit hash (40 or 64
// lower-case hex digits).
func ValidateRevision(field, rev string) error {
	if rev == "" {
		return nil
	}
	if len(rev) != 40 && len(rev) != 64 {
		return fieldErr(field, "%s is not a full Git commit hash (40 or 64 hex digits)", quote(rev))
	}
	for i := 0; i < len(rev); i++ {
		if c := rev[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fieldErr(field, "%s is not a full Git commit hash (lower-case hex digits)", quote(rev))
		}
	}
	return nil
}

// ValidateLabels checks Kubernetes-style labels: at most MaxLabels; keys an optional
// DNS-1123 subdomain prefix and '/' then a name of 1 to 63 letters, digits, '-', '_',
// '.' starting and ending with a letter or digit; values empty or such a name.
func ValidateLabels(field string, labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fieldErr(field, "has %d labels, more than the limit of %d", len(labels), MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		f := field + "[" + strconv.Quote(k) + "]"
		name := k
		if prefix, rest, ok := strings.Cut(k, "/"); ok {
			if msg := dnsSubdomain(prefix); msg != "" {
				return fieldErr(f, "label key prefix %s: %s", quote(prefix), msg)
			}
			name = rest
		}
		if msg := labelName(name); msg != "" {
			return fieldErr(f, "label key %s: %s", quote(k), msg)
		}
		if v != "" {
			if msg := labelName(v); msg != "" {
				return fieldErr(f, "label value %s: %s", quote(v), msg)
			}
		}
	}
	return nil
}

// Validate checks the report: the cluster name, the agent, the times, every app
// (unique, at most MaxApps) and every drift entry (at most MaxDriftEntries, each for
// an app of the report, at most one per object, secret values masked).
func (r *StatusReport) Validate() error {
	if err := ValidateName("cluster", r.Cluster); err != nil {
		return err
	}
	if err := r.Agent.validate("agent"); err != nil {
		return err
	}
	if err := checkTime("sentAt", r.SentAt, true, time.Time{}); err != nil {
		return err
	}
	if len(r.Apps) > MaxApps {
		return fieldErr("apps", "has %d apps, more than the limit of %d", len(r.Apps), MaxApps)
	}
	apps := make(map[string]bool, len(r.Apps))
	for i := range r.Apps {
		a := &r.Apps[i]
		if err := a.validate(join("apps", i), r.SentAt); err != nil {
			return err
		}
		if apps[a.App] {
			return fieldErr(join("apps", i, "app"), "%s is reported twice", quote(a.App))
		}
		apps[a.App] = true
	}
	if len(r.Drift) > MaxDriftEntries {
		return fieldErr("drift", "has %d entries, more than the limit of %d", len(r.Drift), MaxDriftEntries)
	}
	seen := make(map[string]bool, len(r.Drift))
	for i := range r.Drift {
		d := &r.Drift[i]
		f := join("drift", i)
		if err := d.validate(f, r.SentAt); err != nil {
			return err
		}
		if !apps[d.App] {
			return fieldErr(join(f, "app"), "%s is not among the report's apps", quote(d.App))
		}
		key := d.App + " " + d.Object.Group + "/" + d.Object.Kind + "/" + d.Object.Namespace + "/" + d.Object.Name
		if seen[key] {
			return fieldErr(join(f, "object"), "%s of app %s is reported twice", d.Object, quote(d.App))
		}
		seen[key] = true
	}
	return nil
}

func (a *AgentInfo) validate(field string) error {
	if a.ID == "" {
		return fieldErr(join(field, "id"), "must not be empty")
	}
	if err := checkText(join(field, "id"), a.ID, MaxShortLen, false); err != nil {
		return err
	}
	if err := checkText(join(field, "pod"), a.Pod, MaxShortLen, false); err != nil {
		return err
	}
	return checkText(join(field, "version"), a.Version, MaxVersionLen, false)
}

// Validate checks one app status on its own (Report.Validate also checks its times
// against the report's SentAt).
func (a *AppStatus) Validate() error { return a.validate("", time.Time{}) }

func (a *AppStatus) validate(field string, sentAt time.Time) error {
	if err := ValidateName(join(field, "app"), a.App); err != nil {
		return err
	}
	g := a.Generation
	if g.Epoch < 0 {
		return fieldErr(join(field, "generation", "epoch"), "must not be negative")
	}
	if g.Sequence < 1 {
		return fieldErr(join(field, "generation", "sequence"), "must be at least 1")
	}
	if a.Version != "" {
		if err := ValidateVersion(join(field, "version"), a.Version); err != nil {
			return err
		}
	}
	if err := ValidateRevision(join(field, "revision"), a.Revision); err != nil {
		return err
	}
	if !a.Phase.Valid() {
		return fieldErr(join(field, "phase"), "%s is not one of Pending, Syncing, Synced, Failed, SourceUnavailable, Removed", quote(string(a.Phase)))
	}
	if err := a.Health.validate(join(field, "health")); err != nil {
		return err
	}
	if err := a.Counts.validate(join(field, "counts")); err != nil {
		return err
	}
	if len(a.Changes) > MaxChanges {
		return fieldErr(join(field, "changes"), "has %d entries, more than the limit of %d (count the rest in changesOmitted)", len(a.Changes), MaxChanges)
	}
	for i := range a.Changes {
		c := &a.Changes[i]
		f := join(field, "changes", i)
		if !c.Action.Valid() {
			return fieldErr(join(f, "action"), "%s is not one of created, configured, recreated, pruned, disowned, failed", quote(string(c.Action)))
		}
		if err := c.ObjectRef.validate(f, false); err != nil {
			return err
		}
	}
	if a.ChangesOmitted < 0 || a.ChangesOmitted > MaxCount {
		return fieldErr(join(field, "changesOmitted"), "must be between 0 and %d", MaxCount)
	}
	if a.Error != nil {
		if err := a.Error.validate(join(field, "error")); err != nil {
			return err
		}
	}
	if err := a.Durations.validate(join(field, "durations")); err != nil {
		return err
	}
	return checkTime(join(field, "lastSyncedAt"), a.LastSyncedAt, false, sentAt)
}

func (h *Health) validate(field string) error {
	if !h.Status.Valid() {
		return fieldErr(join(field, "status"), "%s is not one of Current, InProgress, Failed, Timeout, Unknown", quote(string(h.Status)))
	}
	if err := checkText(join(field, "message"), h.Message, MaxMessageLen, true); err != nil {
		return err
	}
	if h.Object != nil {
		return h.Object.validate(join(field, "object"), false)
	}
	return nil
}

func (c *Counts) validate(field string) error {
	for _, n := range []struct {
		name string
		v    int
	}{
		{"desired", c.Desired}, {"applied", c.Applied}, {"created", c.Created},
		{"configured", c.Configured}, {"recreated", c.Recreated}, {"unchanged", c.Unchanged},
		{"skipped", c.Skipped}, {"kept", c.Kept}, {"pruned", c.Pruned}, {"failed", c.Failed},
	} {
		if n.v < 0 || n.v > MaxCount {
			return fieldErr(join(field, n.name), "%d is not between 0 and %d", n.v, MaxCount)
		}
	}
	return nil
}

func (e *AppError) validate(field string) error {
	if !e.Stage.Valid() {
		return fieldErr(join(field, "stage"), "%s is not one of fetch, render, plan, apply, prune, health", quote(string(e.Stage)))
	}
	if e.Message == "" {
		return fieldErr(join(field, "message"), "must not be empty")
	}
	if err := checkText(join(field, "message"), e.Message, MaxMessageLen, true); err != nil {
		return err
	}
	if err := checkText(join(field, "file"), e.File, MaxPathLen, false); err != nil {
		return err
	}
	if e.Line < 0 || e.Line > MaxCount {
		return fieldErr(join(field, "line"), "%d is not between 0 and %d", e.Line, MaxCount)
	}
	if e.Object != nil {
		if err := e.Object.validate(join(field, "object"), false); err != nil {
			return err
		}
	}
	return checkText(join(field, "field"), e.Field, MaxPathLen, false)
}

func (d *Durations) validate(field string) error {
	limit := MaxDuration.Milliseconds()
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"fetchMs", d.FetchMs}, {"renderMs", d.RenderMs}, {"planMs", d.PlanMs}, {"applyMs", d.ApplyMs},
		{"pruneMs", d.PruneMs}, {"healthMs", d.HealthMs}, {"totalMs", d.TotalMs},
	} {
		if n.v < 0 || n.v > limit {
			return fieldErr(join(field, n.name), "%d is not between 0 and %d", n.v, limit)
		}
	}
	return nil
}

// Validate checks the reference on its own; Kind and Name are required.
func (r ObjectRef) Validate() error { return r.validate("", false) }

func (r *ObjectRef) validate(field string, needVersion bool) error {
	if r.Group != "" {
		if msg := dnsSubdomain(r.Group); msg != "" {
			return fieldErr(join(field, "group"), "%s: %s", quote(r.Group), msg)
		}
	}
	switch {
	case r.Version == "" && needVersion:
		return fieldErr(join(field, "version"), "must not be empty")
	case r.Version != "":
		if msg := dnsLabel(r.Version); msg != "" {
			return fieldErr(join(field, "version"), "%s: %s", quote(r.Version), msg)
		}
	}
	if r.Kind == "" {
		return fieldErr(join(field, "kind"), "must not be empty")
	}
	if len(r.Kind) > 63 || !isLetter(r.Kind[0]) || strings.IndexFunc(r.Kind, func(c rune) bool { return c > unicode.MaxASCII || !isAlnum(byte(c)) }) >= 0 {
		return fieldErr(join(field, "kind"), "%s is not a kind (a letter, then at most 62 letters and digits)", quote(r.Kind))
	}
	if r.Namespace != "" {
		if msg := dnsLabel(r.Namespace); msg != "" {
			return fieldErr(join(field, "namespace"), "%s: %s", quote(r.Namespace), msg)
		}
	}
	switch {
	case r.Name == "":
		return fieldErr(join(field, "name"), "must not be empty")
	case len(r.Name) > MaxShortLen:
		return fieldErr(join(field, "name"), "is %d bytes long, more than the limit of %d", len(r.Name), MaxShortLen)
	case r.Name == "." || r.Name == "..":
		return fieldErr(join(field, "name"), "%s is not a valid object name", quote(r.Name))
	}
	for i := 0; i < len(r.Name); i++ {
		if c := r.Name[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '%' {
			return fieldErr(join(field, "name"), "%s must hold only printable ASCII other than '/' and '%%'", quote(r.Name))
		}
	}
	return nil
}

func (d *Drift) validate(field string, sentAt time.Time) error {
	if err := ValidateName(join(field, "app"), d.App); err != nil {
		return err
	}
	if err := d.Object.validate(join(field, "object"), true); err != nil {
		return err
	}
	if len(d.Fields) == 0 && !d.Deleted {
		return fieldErr(join(field, "fields"), "must not be empty unless the object is deleted")
	}
	if len(d.Fields) > MaxDriftFields {
		return fieldErr(join(field, "fields"), "has %d entries, more than the limit of %d", len(d.Fields), MaxDriftFields)
	}
	secret := d.Object.Group == "" && d.Object.Kind == "Secret"
	for i := range d.Fields {
		if err := d.Fields[i].validate(join(field, "fields", i), secret); err != nil {
			return err
		}
	}
	return checkTime(join(field, "observedAt"), d.ObservedAt, true, sentAt)
}

func (f *DriftField) validate(field string, secret bool) error {
	if f.Path == "" {
		return fieldErr(join(field, "path"), "must not be empty")
	}
	if err := checkText(join(field, "path"), f.Path, MaxPathLen, false); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		raw  json.RawMessage
	}{{"desired", f.Desired}, {"live", f.Live}} {
		if len(v.raw) == 0 {
			continue
		}
		if len(v.raw) > MaxValueBytes {
			return fieldErr(join(field, v.name), "is %d bytes of JSON, more than the limit of %d", len(v.raw), MaxValueBytes)
		}
		if !json.Valid(v.raw) {
			return fieldErr(join(field, v.name), "is not valid JSON")
		}
		if secret && isSecretData(f.Path) && !isMasked(v.raw) {
			return fieldErr(join(field, v.name), "a Secret's data must be masked as %q: secret values never leave the cluster", Redacted)
		}
	}
	if err := checkText(join(field, "manager"), f.Manager, MaxShortLen, false); err != nil {
		return err
	}
	switch f.Operation {
	case "", OperationApply, OperationUpdate:
	default:
		return fieldErr(join(field, "operation"), "%s is not one of Apply, Update", quote(f.Operation))
	}
	if f.Subresource != "" {
		if msg := dnsLabel(f.Subresource); msg != "" {
			return fieldErr(join(field, "subresource"), "%s: %s", quote(f.Subresource), msg)
		}
	}
	// Time comes from the apiserver's clock (managedFields), not the agent's: only
	// its range is checked.
	return checkTime(join(field, "time"), f.Time, false, time.Time{})
}

// isSecretData tells whether a drift path of a v1 Secret is under data or stringData,
// or is one of them.
func isSecretData(path string) bool {
	for _, p := range []string{"data", "stringData"} {
		if rest, ok := strings.CutPrefix(path, p); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return true
		}
	}
	return false
}

// isMasked tells whether a JSON value holds no secret: null, the Redacted string, or
// an object or array whose every value is masked (the whole data map, masked per key).
func isMasked(raw json.RawMessage) bool {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	return maskedValue(v)
}

func maskedValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == Redacted
	case map[string]any:
		for _, e := range v {
			if !maskedValue(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !maskedValue(e) {
				return false
			}
		}
		return true
	}
	return false
}

// Validate checks the request.
func (r *RegisterClusterRequest) Validate() error {
	if err := ValidateName("name", r.Name); err != nil {
		return err
	}
	return ValidateLabels("labels", r.Labels)
}

// Validate checks the request.
func (r *RotateTokenRequest) Validate() error {
	if r.GraceSeconds < 0 || r.GraceSeconds > MaxTokenGrace {
		return fieldErr("graceSeconds", "is %d, want 0 to %d (a day)", r.GraceSeconds, MaxTokenGrace)
	}
	return nil
}

// Validate checks the request.
func (r *SetVersionRequest) Validate() error { return ValidateVersion("version", r.Version) }

// checkText checks free text: valid UTF-8, at most max bytes, no control characters
// (newline and tab allowed when multiline).
func checkText(field, s string, max int, multiline bool) error {
	if len(s) > max {
		return fieldErr(field, "is %d bytes long, more than the limit of %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "is not valid UTF-8")
	}
	for _, c := range s {
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t')) {
			return fieldErr(field, "must not contain control characters (found %U)", c)
		}
	}
	return nil
}

// checkTime checks a time lies in 2000–2200 (set, when required) and, when notAfter is
// set, at most MaxClockSkew after it.
func checkTime(field string, t time.Time, required bool, notAfter time.Time) error {
	if t.IsZero() {
		if required {
			return fieldErr(field, "must be set")
		}
		return nil
	}
	if u := t.Unix(); u < minTimeUnix || u >= maxTimeUnix {
		return fieldErr(field, "%s is not a sane time (2000 to 2200)", t.UTC().Format(time.RFC3339))
	}
	if !notAfter.IsZero() && t.After(notAfter.Add(MaxClockSkew)) {
		return fieldErr(field, "%s is after the report's sentAt %s", t.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// dnsLabel returns what makes s not a DNS-1123 label, or "".
func dnsLabel(s string) string {
	if len(s) > 63 {
		return fmt.Sprintf("must be at most 63 characters, not %d", len(s))
	}
	if s == "" {
		return "must not be empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "must hold only lower-case letters, digits and '-'"
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "must start and end with a letter or digit"
	}
	return ""
}

// dnsSubdomain returns what makes s not a DNS-1123 subdomain, or "".
func dnsSubdomain(s string) string {
	if len(s) > 253 {
		return fmt.Sprintf("must be at most 253 characters, not %d", len(s))
	}
	for _, part := range strings.Split(s, ".") {
		if msg := dnsLabel(part); msg != "" {
			return "must be dot-separated DNS labels: " + msg
		}
	}
	return ""
}

// labelName returns what makes s not a label name (or value), or "".
func labelName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 63:
		return fmt.Sprintf("must be at most 63 characters, not %d", len(s))
	case !isAlnum(s[0]) || !isAlnum(s[len(s)-1]):
		return "must start and end with a letter or digit"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return "must hold only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isAlnum(c byte) bool { return isLetter(c) || '0' <= c && c <= '9' }

// quote quotes s for a message, shortened to 80 bytes so a huge value cannot bloat it.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}
