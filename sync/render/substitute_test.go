package render

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/envsubst"
)

// TestSubstituteModes renders one ConfigMap value under each app.yaml substitute
// mode. The app has the variable greeting=hello (apps.yaml) and APP_VERSION=1.0.0.
func TestSubstituteModes(t *testing.T) {
	const script = `#!/bin/sh
echo "${greeting} $HOME ${PATH} ${PORT:-8080} ${#ARGS} ${A:-${greeting}} $$ $${greeting}"
`
	tests := map[string]struct {
		mode    string // app.yaml substitute; "" leaves it unset
		value   string
		want    string
		wantErr string
	}{
		"unset is strict and fails": {value: "${PATH}", wantErr: `undefined variable "PATH"`},
		"strict names the option": {mode: "strict", value: "${PATH}",
			wantErr: `set "substitute: defined" in apps/web/app.yaml to leave undefined variables as written`},
		"strict replaces defined":     {mode: "strict", value: "${greeting} ${APP_VERSION}", want: "hello 1.0.0"},
		"strict keeps the escape":     {mode: "strict", value: "$${greeting} $$", want: "${greeting} $"},
		"strict uses defaults":        {mode: "strict", value: "${PORT:-8080}", want: "8080"},
		"defined leaves undefined":    {mode: "defined", value: "${PATH} ${UNDEFINED}", want: "${PATH} ${UNDEFINED}"},
		"defined leaves unbraced":     {mode: "defined", value: "$HOME $1 $@", want: "$HOME $1 $@"},
		"defined replaces defined":    {mode: "defined", value: "${greeting}-${APP_VERSION}", want: "hello-1.0.0"},
		"defined leaves a default":    {mode: "defined", value: "${PORT:-8080} ${X:=$HOME}", want: "${PORT:-8080} ${X:=$HOME}"},
		"defined leaves nested":       {mode: "defined", value: "${A:-${B:-${C}}}", want: "${A:-${B:-${C}}}"},
		"defined nested in defined":   {mode: "defined", value: "${greeting:-${B}}", want: "hello"},
		"defined length of undefined": {mode: "defined", value: "${#ARGS}", want: "${#ARGS}"},
		"defined unterminated":        {mode: "defined", value: "a ${b c", want: "a ${b c"},
		"defined keeps the escape":    {mode: "defined", value: "$${greeting}", want: "${greeting}"},
		"defined script": {mode: "defined", value: script,
			want: "#!/bin/sh\necho \"hello $HOME ${PATH} ${PORT:-8080} ${#ARGS} ${A:-${greeting}} $ ${greeting}\"\n"},
		"off leaves everything": {mode: "off", value: script, want: script},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			appYAML := "namespace: web\n"
			if tc.mode != "" {
				appYAML += "substitute: " + tc.mode + "\n"
			}
			root := newRepo(t, map[string]string{
				"clusters/test/apps.yaml": "apps:\n  - name: web\n    version: \"1.0.0\"\n    vars: {greeting: hello}\n",
				"apps/web/app.yaml":       appYAML,
				"apps/web/deploy.yaml":    "",
				"apps/web/cm.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  v: " + quoteYAML(tc.value) + "\n",
			})
			res, err := renderApp(t, root, "web", Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _, _ := unstructuredString(res.Objects[0].Object, "data", "v")
			if got != tc.want {
				t.Errorf("value = %q, want %q", got, tc.want)
			}
		})
	}
}

// quoteYAML writes s as a double-quoted YAML scalar.
func quoteYAML(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// FuzzEscapeUndefined: with no variable defined, defined mode leaves a text without
// "$$" exactly as written (or fails to parse it, as strict mode would).
//
//	go test ./sync/render -run '^$' -fuzz FuzzEscapeUndefined -fuzztime 30s
func FuzzEscapeUndefined(f *testing.F) {
	for _, s := range []string{"${A}", "${A:-${B}}", "${#B}", "a ${b c", "${B/x/${A}}", "$B ${", "}${B}}", "${A}${B:=$A}", `\${B}`, "${B:-}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, "$$") {
			return
		}
		got, err := envsubst.Eval(escapeUndefined(s, nil), func(string) (string, bool) { return "", true })
		if err == nil && got != s {
			t.Fatalf("%q with no variables came out as %q", s, got)
		}
	})
}
