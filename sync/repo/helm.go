package repo

import (
	"net/url"
	"path"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Limits and defaults of app.yaml's helm block.
const (
	// DefaultChartVersion is helm.version when unset: the app's version from
	// apps.yaml, so `outpost set` bumps the chart.
	DefaultChartVersion = "${" + VarAppVersion + "}"
	// MaxValuesFiles is the largest number of helm.valuesFiles.
	MaxValuesFiles = 32
	// ClusterValuesDir is the directory, inside clusters/<cluster>/, of the
	// per-cluster values files of Helm apps: clusters/<c>/values/<app>.yaml.
	ClusterValuesDir = "values"
)

// HelmConfig is app.yaml's helm block: the app renders a Helm chart (template, then
// apply: no Helm release) instead of a kustomization. Exactly one of Path, Repo and
// OCI is set.
type HelmConfig struct {
	// Path is a chart inside the repository, repo-relative ("charts/web").
	Path string `json:"path,omitempty"`
	// Repo is the URL of an HTTP chart repository (its index.yaml); Chart names the chart.
	Repo string `json:"repo,omitempty"`
	// OCI is the chart's OCI reference without a tag ("oci://ghcr.io/org/charts/web").
	OCI string `json:"oci,omitempty"`
	// Chart is the chart's name in Repo.
	Chart string `json:"chart,omitempty"`
	// Version is the exact chart version of a Repo or OCI chart (a range is refused);
	// ${VAR} references are substituted. Default "${APP_VERSION}". Unused for Path.
	Version string `json:"version,omitempty"`
	// Digest optionally pins the download: "sha256:<hex>" of the .tgz (Repo) or of the
	// manifest (OCI).
	Digest string `json:"digest,omitempty"`
	// ReleaseName is .Release.Name. Default: the app's name.
	ReleaseName string `json:"releaseName,omitempty"`
	// Values is the inline values mapping as YAML text (comments dropped); ${VAR}
	// references in it are substituted, then it is merged over the values files.
	Values string `json:"values,omitempty"`
	// ValuesFiles are repo-relative values files merged in order over the chart's
	// values.yaml, ${VAR} references substituted.
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// SkipCRDs leaves out the CRDs of the chart's crds/ directories.
	SkipCRDs bool `json:"skipCRDs,omitempty"`
	// IncludeTests renders the chart's test hooks (run after health); default false:
	// they are skipped.
	IncludeTests bool `json:"includeTests,omitempty"`
	// Lookup gives the chart's lookup function read-only access to the cluster
	// (namespaced objects in the app's namespace, cluster-scoped objects); default
	// false: lookup returns empty.
	Lookup bool `json:"lookup,omitempty"`
	// Verify requires the downloaded archive of a Repo or OCI chart to carry a
	// provenance file (.prov) signed by a key of the agent's keyring
	// (--chart-keyring) and matching the archive; default false. The agent's
	// --chart-verify=always requires it of every remote chart whatever this says.
	Verify bool `json:"verify,omitempty"`
}

// Remote reports whether the chart is fetched (Repo or OCI) rather than read from
// the repository.
func (h *HelmConfig) Remote() bool { return h.Path == "" }

var (
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// chartNamePattern is what Helm accepts as a chart name.
	chartNamePattern = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
)

// parseHelm decodes app.yaml's helm block.
func parseHelm(v node) (*HelmConfig, error) {
	if v.isNull() {
		return nil, v.errf("must be a mapping naming a chart (path, repo or oci)")
	}
	h := &HelmConfig{}
	var versionNode, digestNode, verifyNode node
	hasVersion, hasDigest := false, false
	err := v.fields(func(key string, f node) (bool, error) {
		var err error
		switch key {
		case "path":
			err = scalarChecked(f, &h.Path, checkRepoPath)
		case "repo":
			err = scalarChecked(f, &h.Repo, checkChartRepoURL)
		case "oci":
			err = scalarChecked(f, &h.OCI, checkOCIRef)
		case "chart":
			err = scalarChecked(f, &h.Chart, checkChartName)
		case "version":
			hasVersion, versionNode = true, f
			err = scalarChecked(f, &h.Version, checkChartVersionField)
		case "digest":
			hasDigest, digestNode = true, f
			err = scalarChecked(f, &h.Digest, checkDigest)
		case "releaseName":
			err = scalarChecked(f, &h.ReleaseName, validateOptionalName)
		case "values":
			h.Values, err = valuesText(f)
		case "valuesFiles":
			err = parseValuesFiles(f, h)
		case "skipCRDs":
			h.SkipCRDs, err = f.boolean(false)
		case "includeTests":
			h.IncludeTests, err = f.boolean(false)
		case "lookup":
			h.Lookup, err = f.boolean(false)
		case "verify":
			verifyNode = f
			h.Verify, err = f.boolean(false)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	sources := 0
	for _, s := range []string{h.Path, h.Repo, h.OCI} {
		if s != "" {
			sources++
		}
	}
	switch {
	case sources != 1:
		return nil, v.errf("must name exactly one chart source: path (in the repository), repo (an HTTP chart repository, with chart) or oci (oci://registry/path/chart)")
	case h.Repo != "" && h.Chart == "":
		return nil, v.child("chart", v.n).errf("missing field: repo %q needs the chart's name", h.Repo)
	case h.Repo == "" && h.Chart != "":
		return nil, v.child("chart", v.n).errf("only with repo (the chart of a path or oci source is named by it)")
	case h.Path != "" && hasVersion && h.Version != "":
		return nil, versionNode.errf("only with repo or oci: a chart in the repository has the version of its Chart.yaml")
	case h.Path != "" && hasDigest && h.Digest != "":
		return nil, digestNode.errf("only with repo or oci: a chart in the repository is pinned by the Git revision")
	case h.Path != "" && h.Verify:
		return nil, verifyNode.errf("only with repo or oci: a chart in the repository has no provenance file to verify (the Git revision pins it)")
	}
	if h.Remote() && h.Version == "" {
		h.Version = DefaultChartVersion
	}
	return h, nil
}

// valuesText returns the values mapping as YAML text, comments dropped.
func valuesText(v node) (string, error) {
	if v.isNull() {
		return "", nil
	}
	if v.n.Kind != yaml.MappingNode {
		return "", v.errf("must be a mapping, got %s", kindName(v.n))
	}
	if err := refuseCustomTags(v); err != nil {
		return "", err
	}
	c := *v.n
	stripComments(&c)
	out, err := yaml.Marshal(&c)
	if err != nil {
		return "", v.errf("%v", err)
	}
	return string(out), nil
}

// refuseCustomTags refuses tags like !foo anywhere below v.
func refuseCustomTags(v node) error {
	if t := v.n.ShortTag(); t != "" && t[0] == '!' && (len(t) < 2 || t[1] != '!') {
		return v.errf("custom YAML tag %s is not allowed", t)
	}
	for _, c := range v.n.Content {
		if err := refuseCustomTags(node{file: v.file, path: v.path, n: c}); err != nil {
			return err
		}
	}
	return nil
}

func stripComments(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for i, c := range n.Content {
		cc := *c
		stripComments(&cc)
		n.Content[i] = &cc
	}
}

func parseValuesFiles(v node, h *HelmConfig) error {
	if v.n.Kind == yaml.SequenceNode && len(v.n.Content) > MaxValuesFiles {
		return v.errf("lists %d files, more than the limit of %d", len(v.n.Content), MaxValuesFiles)
	}
	return v.list(func(_ int, item node) error {
		var p string
		if err := scalarChecked(item, &p, checkValuesFilePath); err != nil {
			return err
		}
		h.ValuesFiles = append(h.ValuesFiles, p)
		return nil
	})
}

// checkRepoPath accepts a clean relative path inside the repository.
func checkRepoPath(p string) error {
	switch {
	case p == "":
		return &InvalidError{Field: "path", Value: p, Reason: "must not be empty"}
	case strings.HasPrefix(p, "/") || strings.Contains(p, `\`):
		return &InvalidError{Field: "path", Value: p, Reason: "must be a relative path inside the repository with '/' separators"}
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return &InvalidError{Field: "path", Value: p, Reason: "must be a clean path inside the repository (no '.', '..' or trailing '/')"}
	}
	return nil
}

// checkValuesFilePath is checkRepoPath with ${VAR} references allowed (they are
// substituted at render, and the result checked again).
func checkValuesFilePath(p string) error {
	if err := checkRepoPath(p); err != nil {
		return err
	}
	if ext := path.Ext(p); ext != ".yaml" && ext != ".yml" && !strings.Contains(p, "$") {
		return &InvalidError{Field: "valuesFiles", Value: p, Reason: "must be a .yaml or .yml file"}
	}
	return nil
}

func checkChartRepoURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return &InvalidError{Field: "repo", Value: s, Reason: "must be an http(s) URL of a chart repository (no credentials, query or fragment; credentials come from the agent's config)"}
	}
	return nil
}

func checkOCIRef(s string) error {
	rest, ok := strings.CutPrefix(s, "oci://")
	u, err := url.Parse("https://" + rest)
	if !ok || err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") == "" ||
		strings.ContainsAny(rest, "@") || strings.Contains(path.Base(u.Path), ":") {
		return &InvalidError{Field: "oci", Value: s, Reason: "must be oci://registry/path/chart without a tag or digest (set version and digest)"}
	}
	return nil
}

func checkChartName(s string) error {
	if !chartNamePattern.MatchString(s) {
		return &InvalidError{Field: "chart", Value: s, Reason: "must be a chart name (letters, digits, '.', '_', '-')"}
	}
	return nil
}

func checkDigest(s string) error {
	if s != "" && !digestPattern.MatchString(s) {
		return &InvalidError{Field: "digest", Value: s, Reason: "must be sha256:<64 lowercase hex digits>"}
	}
	return nil
}

// checkChartVersionField checks a version as written: one holding a ${VAR} is
// checked after substitution (CheckChartVersion), at render.
func checkChartVersionField(s string) error {
	if strings.Contains(s, "$") {
		return nil
	}
	return CheckChartVersion(s)
}

// exactVersion is a semantic version, optionally prefixed by v: no range operators,
// wildcards or spaces.
var exactVersion = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// CheckChartVersion refuses anything but one exact semantic version ("1.2.3",
// "1.2.3-rc.1"): a range ("^1.2", ">=1.0", "1.x", "*") would make a render depend on
// the day it runs, so chart versions are pinned in Git.
func CheckChartVersion(v string) error {
	if v == "" {
		return &InvalidError{Field: "version", Value: v, Reason: "must not be empty: set the chart's exact version"}
	}
	if !exactVersion.MatchString(v) {
		return &InvalidError{Field: "version", Value: v, Reason: "must be one exact semantic version like 1.2.3 (ranges, wildcards and partial versions are refused: pin the chart version in Git)"}
	}
	return nil
}
