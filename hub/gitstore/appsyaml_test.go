package gitstore

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-gitops/outpost/sync/repo"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestEditAppsFileGolden(t *testing.T) {
	tests := map[string]struct {
		in          string
		edit        AppsEdit
		want        AppsChange
		strictAfter bool // the result must load with sync/repo's parser
	}{
		"set-keeps-comments": {in: "commented.yaml", edit: AppsEdit{App: "web", Version: "1.4.2"},
			want: AppsChange{Before: "1.4.1", After: "1.4.2", Changed: true}, strictAfter: true},
		"set-plain-stays-plain": {in: "commented.yaml", edit: AppsEdit{App: "api", Version: "2.1.0"},
			want: AppsChange{Before: "2.0.0", After: "2.1.0", Changed: true}, strictAfter: true},
		"set-plain-quoted-when-float": {in: "commented.yaml", edit: AppsEdit{App: "api", Version: "2.10"},
			want: AppsChange{Before: "2.0.0", After: "2.10", Changed: true}, strictAfter: true},
		"set-single-quoted": {in: "commented.yaml", edit: AppsEdit{App: "worker", Version: "v8"},
			want: AppsChange{Before: "v7", After: "v8", Changed: true}, strictAfter: true},
		"add-appends-last": {in: "commented.yaml", edit: AppsEdit{App: "cache", Version: "7.2"},
			want: AppsChange{After: "7.2", Changed: true}, strictAfter: true},
		"remove-middle-with-comment": {in: "commented.yaml", edit: AppsEdit{App: "api", Remove: true},
			want: AppsChange{Before: "2.0.0", Changed: true}, strictAfter: true},
		"remove-first": {in: "commented.yaml", edit: AppsEdit{App: "web", Remove: true},
			want: AppsChange{Before: "1.4.1", Changed: true}, strictAfter: true},
		"remove-last": {in: "commented.yaml", edit: AppsEdit{App: "worker", Remove: true},
			want: AppsChange{Before: "v7", Changed: true}, strictAfter: true},
		"flow-items-set": {in: "flowitems.yaml", edit: AppsEdit{App: "api", Version: "2.0.1"},
			want: AppsChange{Before: "2.0.0", After: "2.0.1", Changed: true}, strictAfter: true},
		"flow-items-add": {in: "flowitems.yaml", edit: AppsEdit{App: "db", Version: "15"},
			want: AppsChange{After: "15", Changed: true}, strictAfter: true},
		"empty-list-add": {in: "empty-list.yaml", edit: AppsEdit{App: "web", Version: "1.0.0"},
			want: AppsChange{After: "1.0.0", Changed: true}, strictAfter: true},
		"flow-list-add-reencodes": {in: "flowlist.yaml", edit: AppsEdit{App: "db", Version: "15"},
			want: AppsChange{After: "15", Changed: true, Reformatted: true}, strictAfter: true},
		"flow-list-remove-reencodes": {in: "flowlist.yaml", edit: AppsEdit{App: "web", Remove: true},
			want: AppsChange{Before: "1.0.0", Changed: true, Reformatted: true}, strictAfter: true},
		"remove-only-entry": {in: "single.yaml", edit: AppsEdit{App: "web", Remove: true},
			want: AppsChange{Before: "1.0.0", Changed: true}, strictAfter: true},
		"unindented-list-add": {in: "noindent.yaml", edit: AppsEdit{App: "db", Version: "15.1"},
			want: AppsChange{After: "15.1", Changed: true}},
		"unindented-list-remove-last": {in: "noindent.yaml", edit: AppsEdit{App: "api", Remove: true},
			want: AppsChange{Before: "2.0.0", Changed: true}},
		"crlf-add": {in: "crlf.yaml", edit: AppsEdit{App: "api", Version: "2.0.0"},
			want: AppsChange{After: "2.0.0", Changed: true}, strictAfter: true},
		"no-final-newline-add": {in: "nonewline.yaml", edit: AppsEdit{App: "api", Version: "2.0.0"},
			want: AppsChange{After: "2.0.0", Changed: true}, strictAfter: true},
		"no-final-newline-set": {in: "nonewline.yaml", edit: AppsEdit{App: "web", Version: "1.0.1"},
			want: AppsChange{Before: "1.0.0", After: "1.0.1", Changed: true}, strictAfter: true},
		"block-scalar-reencodes": {in: "blockscalar.yaml", edit: AppsEdit{App: "web", Version: "1.0.1"},
			want: AppsChange{Before: "1.0.0", After: "1.0.1", Changed: true, Reformatted: true}, strictAfter: true},
		"empty-file-add": {in: "empty.yaml", edit: AppsEdit{App: "web", Version: "1.0.0"},
			want: AppsChange{After: "1.0.0", Changed: true}, strictAfter: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "edit", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			out, ch, err := EditAppsFile(in, tc.edit)
			if err != nil {
				t.Fatalf("EditAppsFile: %v", err)
			}
			if ch != tc.want {
				t.Errorf("change = %+v, want %+v", ch, tc.want)
			}
			golden(t, filepath.Join("edit", name+".golden"), out)
			if tc.strictAfter {
				if _, err := repo.ParseAppsFile("apps.yaml", out); err != nil {
					t.Errorf("result does not load with sync/repo: %v\n%s", err, out)
				}
			}
			// The same edit again changes nothing.
			again, ch2, err := EditAppsFile(out, tc.edit)
			switch {
			case tc.edit.Remove:
				var nf *NotFoundError
				if !errors.As(err, &nf) {
					t.Errorf("removing twice: err = %v, want *NotFoundError", err)
				}
			case err != nil || ch2.Changed || !bytes.Equal(again, out):
				t.Errorf("second identical edit: changed=%v err=%v", ch2.Changed, err)
			}
		})
	}
}

func TestEditAppsFileNoop(t *testing.T) {
	in := []byte("apps:\n  - name: web\n    version: \"1.0.0\" # same\n")
	out, ch, err := EditAppsFile(in, AppsEdit{App: "web", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Changed || !bytes.Equal(out, in) || ch.Before != "1.0.0" || ch.After != "1.0.0" {
		t.Errorf("noop edit: changed=%v before=%q after=%q out=%q", ch.Changed, ch.Before, ch.After, out)
	}
}

func TestEditAppsFileErrors(t *testing.T) {
	valid := "apps:\n  - name: web\n    version: \"1.0.0\"\n"
	tests := map[string]struct {
		in    string
		edit  AppsEdit
		field Input  // ValidationError field
		file  string // ContentError file; both empty: a *NotFoundError
	}{
		"bad app name":     {in: valid, edit: AppsEdit{App: "../etc", Version: "1"}, field: InputApp},
		"upper-case name":  {in: valid, edit: AppsEdit{App: "Web", Version: "1"}, field: InputApp},
		"control char":     {in: valid, edit: AppsEdit{App: "we\x00b", Version: "1"}, field: InputApp},
		"empty version":    {in: valid, edit: AppsEdit{App: "web", Version: ""}, field: InputVersion},
		"space in version": {in: valid, edit: AppsEdit{App: "web", Version: "1 2"}, field: InputVersion},
		"newline version":  {in: valid, edit: AppsEdit{App: "web", Version: "1\nx: y"}, field: InputVersion},
		"quote version":    {in: valid, edit: AppsEdit{App: "web", Version: `1"`}, field: InputVersion},
		"not yaml":         {in: "apps: [\n", edit: AppsEdit{App: "web", Version: "1"}, file: "apps.yaml"},
		"apps not a list":  {in: "apps: web\n", edit: AppsEdit{App: "web", Version: "1"}, file: "apps.yaml"},
		"root is a list":   {in: "- web\n", edit: AppsEdit{App: "web", Version: "1"}, file: "apps.yaml"},
		"two documents":    {in: valid + "---\n" + valid, edit: AppsEdit{App: "web", Version: "1"}, file: "apps.yaml"},
		"alias":            {in: "apps:\n  - &w {name: web, version: \"1\"}\n  - *w\n", edit: AppsEdit{App: "web", Version: "2"}, file: "apps.yaml"},
		"duplicate app":    {in: valid + "  - name: web\n    version: \"2\"\n", edit: AppsEdit{App: "web", Version: "3"}, file: "apps.yaml"},
		"remove unlisted":  {in: valid, edit: AppsEdit{App: "api", Remove: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := EditAppsFile([]byte(tc.in), tc.edit)
			if out != nil {
				t.Errorf("output on error: %q", out)
			}
			if tc.file != "" {
				var ce *ContentError
				if !errors.As(err, &ce) || ce.File != tc.file {
					t.Fatalf("err = %v (%T), want *ContentError on %s", err, err, tc.file)
				}
				return
			}
			if tc.field == "" {
				var nf *NotFoundError
				if !errors.As(err, &nf) {
					t.Fatalf("err = %v, want *NotFoundError", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if ve.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", ve.Field, tc.field, err)
			}
		})
	}
}
