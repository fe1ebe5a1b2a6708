package repo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const appsPath = "clusters/prod/apps.yaml"

func TestParseAppsFile(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []AppEntry
		wantErr string
	}{
		"valid": {
			in: "apps:\n  - name: web\n    version: \"1.4.2\"\n    vars: { replicas: \"3\" }\n  - name: db\n    version: 1.10\n",
			want: []AppEntry{
				{Name: "web", Version: "1.4.2", Vars: map[string]string{"replicas": "3"}},
				{Name: "db", Version: "1.10"},
			},
		},
		"no apps": {in: "apps: []\n", want: []AppEntry{}},
		"comments kept out": {
			in:   "# desired state\napps:\n  - name: web # the site\n    version: v1\n",
			want: []AppEntry{{Name: "web", Version: "v1"}},
		},
		"int var value taken as written": {
			in:   "apps:\n  - name: web\n    version: v1\n    vars:\n      replicas: 3\n",
			want: []AppEntry{{Name: "web", Version: "v1", Vars: map[string]string{"replicas": "3"}}},
		},
		"empty file":       {in: "", wantErr: appsPath + `: file is empty; write "apps: []"`},
		"comment only":     {in: "# nothing\n", wantErr: appsPath + `: file is empty`},
		"apps missing":     {in: "foo: []\n", wantErr: appsPath + ":1: foo: unknown field"},
		"apps null":        {in: "apps:\n", wantErr: appsPath + `:1: apps: must be a list; write "apps: []"`},
		"apps not a list":  {in: "apps: web\n", wantErr: appsPath + `:1: apps: must be a list, got "web"`},
		"empty version":    {in: "apps:\n  - name: web\n    version: v1\n  - name: db\n    version: \"\"\n", wantErr: appsPath + ":5: apps[1].version: must not be empty"},
		"missing version":  {in: "apps:\n  - name: web\n", wantErr: appsPath + `:2: apps[0].version: missing field (app "web")`},
		"missing name":     {in: "apps:\n  - version: v1\n", wantErr: appsPath + ":2: apps[0].name: missing field"},
		"version space":    {in: "apps:\n  - name: web\n    version: \"1.0 beta\"\n", wantErr: appsPath + `:3: apps[0].version: "1.0 beta" must start with a letter or digit`},
		"version newline":  {in: "apps:\n  - name: web\n    version: \"1.0\\n\"\n", wantErr: "apps[0].version: \"1.0\\n\" must start"},
		"version too long": {in: "apps:\n  - name: web\n    version: " + strings.Repeat("1", 129) + "\n", wantErr: "apps[0].version: is 129 characters long"},
		"unknown field":    {in: "apps:\n  - name: web\n    version: v1\n    verison: v2\n", wantErr: appsPath + ":4: apps[0].verison: unknown field"},
		"duplicate app":    {in: "apps:\n  - name: web\n    version: v1\n  - name: web\n    version: v2\n", wantErr: appsPath + `:4: apps[1].name: duplicate app "web" (first listed at line 2)`},
		"duplicate key":    {in: "apps:\n  - name: web\n    name: db\n    version: v1\n", wantErr: appsPath + ":3: apps[0].name: duplicate key"},
		"name with slash":  {in: "apps:\n  - name: ../etc\n    version: v1\n", wantErr: `apps[0].name: "../etc" must not contain path characters`},
		"name upper":       {in: "apps:\n  - name: Web\n    version: v1\n", wantErr: `apps[0].name: "Web" is not a valid name`},
		"name control":     {in: "apps:\n  - name: \"w\\x01b\"\n    version: v1\n", wantErr: "must not contain control characters"},
		"name a list":      {in: "apps:\n  - name: [a]\n    version: v1\n", wantErr: "apps[0].name: must be a string, got a list"},
		"bad var name":     {in: "apps:\n  - name: web\n    version: v1\n    vars: {my-var: x}\n", wantErr: `:4: apps[0].vars.my-var: variable name "my-var" must match`},
		"reserved var":     {in: "apps:\n  - name: web\n    version: v1\n    vars: {APP_VERSION: x}\n", wantErr: `apps[0].vars.APP_VERSION: variable name "APP_VERSION" is reserved`},
		"label prefix var": {in: "apps:\n  - name: web\n    version: v1\n    vars: {CLUSTER_LABEL_env: x}\n", wantErr: "uses a reserved prefix"},
		"var newline":      {in: "apps:\n  - name: web\n    version: v1\n    vars: {a: \"x\\ny\"}\n", wantErr: "apps[0].vars.a: value must not contain control characters"},
		"var too long":     {in: "apps:\n  - name: web\n    version: v1\n    vars: {a: " + strings.Repeat("x", MaxVarValueLen+1) + "}\n", wantErr: "value is 4097 bytes long"},
		"two documents":    {in: "apps: []\n---\napps: []\n", wantErr: appsPath + ":2: must hold one YAML document, found another"},
		"syntax error":     {in: "apps:\n  web: x\n    version: v1\n", wantErr: appsPath + ":3: invalid YAML: mapping values are not allowed"},
		"custom tag":       {in: "apps:\n  - name: !foo web\n    version: v1\n", wantErr: "custom YAML tag !foo is not allowed"},
		"alias":            {in: "v: &v \"1\"\napps:\n  - name: web\n    version: *v\n", wantErr: appsPath + ":1: YAML anchors and aliases are not allowed"},
		"top-level list":   {in: "- name: web\n", wantErr: appsPath + ":1: must be a mapping, got a list"},
		"too big":          {in: "apps: []\n#" + strings.Repeat("x", MaxFileSize), wantErr: "more than the limit of 1048576"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAppsFile(appsPath, []byte(tc.in))
			if tc.wantErr != "" {
				assertErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for i := range got.Apps {
				got.Apps[i].line = 0
			}
			if !reflect.DeepEqual(got.Apps, tc.want) {
				t.Errorf("got %#v, want %#v", got.Apps, tc.want)
			}
		})
	}
}

func TestParseAppFile(t *testing.T) {
	const file = "apps/web/app.yaml"
	def := DefaultAppConfig()
	tests := map[string]struct {
		in      string
		want    AppConfig
		wantErr string
	}{
		"empty is defaults": {in: "", want: def},
		"all fields": {
			in: "namespace: web\nprune: false\ndrift: correct\nhealthTimeout: 90s\ndependsOn: [db, cache]\nallowEmpty: true\nforce: true\nsubstitute: defined\ncreateNamespace: false\n",
			want: AppConfig{Namespace: "web", Prune: false, Drift: DriftCorrect,
				HealthTimeout: metav1.Duration{Duration: 90 * time.Second}, DependsOn: []string{"db", "cache"},
				AllowEmpty: true, Force: true, Substitute: SubstituteDefined, dependsOnLines: []int{5, 5}},
		},
		"nulls keep defaults": {in: "namespace:\nprune:\ndrift:\nhealthTimeout:\nsubstitute:\ncreateNamespace:\n", want: def},
		"substitute off":      {in: "substitute: off\n", want: func() AppConfig { c := def; c.Substitute = SubstituteOff; return c }()},
		"bad substitute":      {in: "prune: true\nsubstitute: lenient\n", wantErr: file + `:2: substitute: must be "strict", "defined" or "off", got "lenient"`},
		"createNamespace str": {in: "createNamespace: \"no\"\n", wantErr: file + `:1: createNamespace: must be true or false, got "no"`},
		"unknown field":       {in: "namespace: web\nprun: false\n", wantErr: file + ":2: prun: unknown field"},
		"bad drift":           {in: "drift: sometimes\n", wantErr: file + `:1: drift: must be "report" or "correct", got "sometimes"`},
		"prune string":        {in: "prune: \"no\"\n", wantErr: file + `:1: prune: must be true or false, got "no"`},
		"bad duration":        {in: "healthTimeout: 5 minutes\n", wantErr: file + `:1: healthTimeout: must be a duration like 90s or 5m, got "5 minutes"`},
		"zero duration":       {in: "healthTimeout: 0s\n", wantErr: "healthTimeout: must be more than 0s and at most 24h0m0s"},
		"huge duration":       {in: "healthTimeout: 25h\n", wantErr: "healthTimeout: must be more than 0s and at most 24h0m0s, got 25h"},
		"bad namespace":       {in: "namespace: My_NS\n", wantErr: file + `:1: namespace: "My_NS" is not a valid name`},
		"dependsOn string":    {in: "dependsOn: db\n", wantErr: file + `:1: dependsOn: must be a list, got "db"`},
		"dependsOn dup":       {in: "dependsOn:\n  - db\n  - db\n", wantErr: file + `:3: dependsOn[1]: duplicate dependency "db"`},
		"dependsOn bad name":  {in: "dependsOn: [\"../db\"]\n", wantErr: `dependsOn[0]: "../db" must not contain path characters`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAppFile(file, []byte(tc.in))
			if tc.wantErr != "" {
				assertErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %#v, want %#v", *got, tc.want)
			}
		})
	}
}

func TestParseClusterFile(t *testing.T) {
	const file = "clusters/prod/cluster.yaml"
	tests := map[string]struct {
		in      string
		want    ClusterConfig
		wantErr string
	}{
		"empty": {in: ""},
		"labels and vars": {
			in: "labels:\n  env: prod\n  topology.kubernetes.io/region: eu\nvars:\n  domain: example.com\n",
			want: ClusterConfig{
				Labels: map[string]string{"env": "prod", "topology.kubernetes.io/region": "eu"},
				Vars:   map[string]string{"domain": "example.com"},
			},
		},
		"unknown field":    {in: "label:\n  env: prod\n", wantErr: file + ":1: label: unknown field"},
		"bad label key":    {in: "labels:\n  \"bad key\": x\n", wantErr: file + `:2: labels.bad key: label key "bad key" is invalid`},
		"bad label value":  {in: "labels:\n  env: \"has space\"\n", wantErr: `labels.env: label value "has space" is invalid`},
		"label collision":  {in: "labels:\n  a.b: x\n  a-b: y\n", wantErr: file + `:2: labels: label keys "a-b" and "a.b" both map to variable CLUSTER_LABEL_a_b`},
		"labels not a map": {in: "labels: [env]\n", wantErr: file + ":1: labels: must be a mapping, got a list"},
		"nested var":       {in: "vars:\n  a: {b: c}\n", wantErr: file + ":2: vars.a: must be a string, got a mapping"},
		"reserved var":     {in: "vars:\n  CLUSTER_NAME: x\n", wantErr: `vars.CLUSTER_NAME: variable name "CLUSTER_NAME" is reserved`},
		"outpost prefix":   {in: "vars:\n  OUTPOST_X: x\n", wantErr: "uses a reserved prefix"},
		"too many vars":    {in: "vars:\n" + manyVars(MaxVars+1), wantErr: file + ":2: vars: has 257 entries, more than the limit of 256"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseClusterFile(file, []byte(tc.in))
			if tc.wantErr != "" {
				assertErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %#v, want %#v", *got, tc.want)
			}
		})
	}
}

func TestLabelVar(t *testing.T) {
	tests := map[string]string{
		"env":                           "CLUSTER_LABEL_env",
		"topology.kubernetes.io/region": "CLUSTER_LABEL_topology_kubernetes_io_region",
		"app-tier":                      "CLUSTER_LABEL_app_tier",
	}
	for key, want := range tests {
		if got := LabelVar(key); got != want {
			t.Errorf("LabelVar(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := map[string]struct {
		err  *Error
		want string
	}{
		"full":      {&Error{File: "a.yaml", Line: 4, Field: "apps[1].version", Msg: "bad"}, "a.yaml:4: apps[1].version: bad"},
		"no line":   {&Error{File: "a.yaml", Field: "f", Msg: "bad"}, "a.yaml: f: bad"},
		"no field":  {&Error{File: "a.yaml", Line: 2, Msg: "bad"}, "a.yaml:2: bad"},
		"file only": {&Error{File: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// assertErr checks that err is an *Error whose text contains want.
func assertErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected error containing %q, got nil", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q is %T, not *repo.Error", err, err)
	}
}

func manyVars(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  v")
		b.WriteString(strings.Repeat("x", i%5))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + (i/26)%26)))
		b.WriteString(": x\n")
	}
	return b.String()
}
