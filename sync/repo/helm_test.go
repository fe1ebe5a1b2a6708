package repo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAppFileHelm(t *testing.T) {
	const file = "apps/web/app.yaml"
	tests := map[string]struct {
		in      string
		want    *HelmConfig
		wantErr string
	}{
		"path chart": {
			in:   "helm:\n  path: charts/web\n  releaseName: site\n  skipCRDs: true\n",
			want: &HelmConfig{Path: "charts/web", ReleaseName: "site", SkipCRDs: true},
		},
		"repo chart, version defaults to APP_VERSION": {
			in:   "helm:\n  repo: https://charts.example.com\n  chart: web\n",
			want: &HelmConfig{Repo: "https://charts.example.com", Chart: "web", Version: "${APP_VERSION}"},
		},
		"oci chart with digest": {
			in:   "helm:\n  oci: oci://ghcr.io/org/charts/web\n  version: 1.2.3\n  digest: sha256:" + strings.Repeat("a", 64) + "\n",
			want: &HelmConfig{OCI: "oci://ghcr.io/org/charts/web", Version: "1.2.3", Digest: "sha256:" + strings.Repeat("a", 64)},
		},
		"values kept as text, comments dropped": {
			in:   "helm:\n  path: charts/web\n  values:\n    replicas: ${replicas} # n\n    image: {tag: \"${APP_VERSION}\"}\n  valuesFiles: [apps/web/values.yaml, \"clusters/${CLUSTER_NAME}/web.yaml\"]\n  includeTests: true\n",
			want: &HelmConfig{Path: "charts/web", Values: "replicas: ${replicas}\nimage: {tag: \"${APP_VERSION}\"}\n", ValuesFiles: []string{"apps/web/values.yaml", "clusters/${CLUSTER_NAME}/web.yaml"}, IncludeTests: true},
		},
		"repo chart verified": {
			in:   "helm:\n  repo: https://charts.example.com\n  chart: web\n  version: 1.0.0\n  verify: true\n",
			want: &HelmConfig{Repo: "https://charts.example.com", Chart: "web", Version: "1.0.0", Verify: true},
		},
		"oci chart verify false": {
			in:   "helm:\n  oci: oci://ghcr.io/org/charts/web\n  version: 1.2.3\n  verify: false\n",
			want: &HelmConfig{OCI: "oci://ghcr.io/org/charts/web", Version: "1.2.3"},
		},
		"path chart verify false": {
			in:   "helm:\n  path: charts/web\n  verify: false\n",
			want: &HelmConfig{Path: "charts/web"},
		},
		"verify with path":           {in: "helm:\n  path: charts/web\n  verify: true\n", wantErr: file + ":3: helm.verify: only with repo or oci: a chart in the repository has no provenance file"},
		"verify not bool":            {in: "helm:\n  oci: oci://r.example.com/c/web\n  verify: \"yes\"\n", wantErr: file + ":3: helm.verify: must be true or false"},
		"verify yes":                 {in: "helm:\n  oci: oci://r.example.com/c/web\n  verify: yes\n", wantErr: file + ":3: helm.verify: must be true or false"},
		"verify null is the default": {in: "helm:\n  oci: oci://r.example.com/c/web\n  version: 1.0.0\n  verify:\n", want: &HelmConfig{OCI: "oci://r.example.com/c/web", Version: "1.0.0"}},
		"verify list":                {in: "helm:\n  oci: oci://r.example.com/c/web\n  verify: [true]\n", wantErr: file + ":3: helm.verify:"},
		"no source":                  {in: "helm:\n  chart: web\n", wantErr: file + ":2: helm: must name exactly one chart source"},
		"two sources":                {in: "helm:\n  path: charts/web\n  oci: oci://r/x\n", wantErr: "helm: must name exactly one chart source"},
		"null block":                 {in: "helm:\n", wantErr: file + ":1: helm: must be a mapping naming a chart"},
		"unknown field":              {in: "helm:\n  path: charts/web\n  valueFiles: [a.yaml]\n", wantErr: file + ":3: helm.valueFiles: unknown field"},
		"repo without chart":         {in: "helm:\n  repo: https://c.example.com\n", wantErr: "helm.chart: missing field"},
		"chart with path":            {in: "helm:\n  path: charts/web\n  chart: web\n", wantErr: "helm.chart: only with repo"},
		"version with path":          {in: "helm:\n  path: charts/web\n  version: 1.0.0\n", wantErr: file + ":3: helm.version: only with repo or oci"},
		"digest with path":           {in: "helm:\n  path: charts/web\n  digest: sha256:" + strings.Repeat("a", 64) + "\n", wantErr: "helm.digest: only with repo or oci"},
		"version range":              {in: "helm:\n  repo: https://c.example.com\n  chart: web\n  version: ^1.2.0\n", wantErr: file + `:4: helm.version: must be one exact semantic version`},
		"version wildcard":           {in: "helm:\n  oci: oci://r.example.com/c/web\n  version: 1.x\n", wantErr: "helm.version: must be one exact semantic version"},
		"version partial":            {in: "helm:\n  oci: oci://r.example.com/c/web\n  version: \"1.2\"\n", wantErr: "helm.version: must be one exact semantic version"},
		"bad digest":                 {in: "helm:\n  oci: oci://r.example.com/c/web\n  digest: md5:abc\n", wantErr: "helm.digest: must be sha256:"},
		"path escapes":               {in: "helm:\n  path: ../charts/web\n", wantErr: file + ":2: helm.path: must be a clean path inside the repository"},
		"path absolute":              {in: "helm:\n  path: /etc\n", wantErr: "helm.path: must be a relative path"},
		"repo not http":              {in: "helm:\n  repo: file:///etc\n  chart: x\n", wantErr: "helm.repo: must be an http(s) URL"},
		"repo credentials":           {in: "helm:\n  repo: https://u:p@c.example.com\n  chart: x\n", wantErr: "helm.repo: must be an http(s) URL of a chart repository (no credentials"},
		"oci with tag":               {in: "helm:\n  oci: oci://r.example.com/c/web:1.0.0\n", wantErr: "helm.oci: must be oci://registry/path/chart without a tag"},
		"oci not oci":                {in: "helm:\n  oci: https://r.example.com/c/web\n", wantErr: "helm.oci: must be oci://"},
		"values not a map":           {in: "helm:\n  path: charts/web\n  values: [1]\n", wantErr: "helm.values: must be a mapping, got a list"},
		"values custom tag":          {in: "helm:\n  path: charts/web\n  values: {a: !x b}\n", wantErr: "custom YAML tag !x is not allowed"},
		"values file escape":         {in: "helm:\n  path: charts/web\n  valuesFiles: [../x.yaml]\n", wantErr: file + ":3: helm.valuesFiles[0]: must be a clean path"},
		"values file ext":            {in: "helm:\n  path: charts/web\n  valuesFiles: [apps/web/values.json]\n", wantErr: "helm.valuesFiles[0]: must be a .yaml or .yml file"},
		"skipCRDs not bool":          {in: "helm:\n  path: charts/web\n  skipCRDs: \"yes\"\n", wantErr: "helm.skipCRDs: must be true or false"},
		"bad release name":           {in: "helm:\n  path: charts/web\n  releaseName: Web_1\n", wantErr: "helm.releaseName:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAppFile(file, []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Helm, tc.want) {
				t.Errorf("helm = %+v, want %+v", got.Helm, tc.want)
			}
		})
	}
}

func TestCheckChartVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"1.2.3": true, "v1.2.3": true, "1.2.3-rc.1": true, "1.2.3+build.5": true,
		"": false, "1.2": false, "~1.2.3": false, ">=1.0.0": false, "1.2.3 || 2.0.0": false, "*": false, "1.2.x": false, "01.2.3": false,
	} {
		if err := CheckChartVersion(v); (err == nil) != ok {
			t.Errorf("CheckChartVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestParseAppFileHelmLookup(t *testing.T) {
	const file = "apps/web/app.yaml"
	tests := map[string]struct {
		in      string
		want    bool
		wantErr string
	}{
		"default false":  {in: "helm:\n  path: charts/web\n"},
		"true":           {in: "helm:\n  path: charts/web\n  lookup: true\n", want: true},
		"false":          {in: "helm:\n  path: charts/web\n  lookup: false\n"},
		"null is false":  {in: "helm:\n  path: charts/web\n  lookup:\n"},
		"string":         {in: "helm:\n  path: charts/web\n  lookup: \"true\"\n", wantErr: file + ":3: helm.lookup: must be true or false"},
		"yes":            {in: "helm:\n  path: charts/web\n  lookup: yes\n", wantErr: file + ":3: helm.lookup: must be true or false"},
		"number":         {in: "helm:\n  path: charts/web\n  lookup: 1\n", wantErr: file + ":3: helm.lookup: must be true or false"},
		"mapping":        {in: "helm:\n  path: charts/web\n  lookup: {namespaces: [a]}\n", wantErr: file + ":3: helm.lookup: must be true or false"},
		"misspelled key": {in: "helm:\n  path: charts/web\n  lookups: true\n", wantErr: file + ":3: helm.lookups: unknown field"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAppFile(file, []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Helm.Lookup != tc.want {
				t.Errorf("helm.lookup = %v, want %v", got.Helm.Lookup, tc.want)
			}
		})
	}
}
