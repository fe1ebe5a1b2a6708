package chart

import (
	"path"
	"strings"
)

// Ref names one exact version of a remote chart: Repo and Chart for an HTTP chart
// repository, or OCI.
type Ref struct {
	// Repo is the URL of an HTTP chart repository (where index.yaml is).
	Repo string `json:"repo,omitempty"`
	// Chart is the chart's name in Repo.
	Chart string `json:"chart,omitempty"`
	// OCI is oci://registry/path/chart, without a tag.
	OCI string `json:"oci,omitempty"`
	// Version is the exact chart version.
	Version string `json:"version"`
	// Digest, when set, is the "sha256:<hex>" the download must have: of the .tgz
	// for Repo, of the manifest for OCI.
	Digest string `json:"digest,omitempty"`
	// Verify requires a provenance file (.prov) signed by a key of the Fetcher's
	// keyring that vouches for the archive (app.yaml's helm.verify). It does not
	// name the archive: the cache holds one entry for both values.
	Verify bool `json:"verify,omitempty"`
}

// Name is the chart's name: Chart, or the last element of the OCI reference.
func (r Ref) Name() string {
	if r.OCI != "" {
		return path.Base(strings.TrimSuffix(r.OCI, "/"))
	}
	return r.Chart
}

// String names the chart for messages: "oci://r/c/web:1.2.3" or
// "https://charts.example.com web 1.2.3", with "@sha256:…" when pinned.
func (r Ref) String() string {
	s := r.Repo + " " + r.Chart + " " + r.Version
	if r.OCI != "" {
		s = r.OCI + ":" + r.Version
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}
