package gitstore

import (
	"bytes"
	"slices"
	"testing"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// FuzzEditAppsFile checks EditAppsFile's promises on any input: it never
// panics; on success the app has the version (or is gone), every other entry is
// unchanged and in order, a file sync/repo accepted is still accepted, and the
// same edit again is a no-op. The seed corpus in testdata/fuzz runs with every
// `go test`; `go test -fuzz FuzzEditAppsFile ./hub/gitstore` explores further.
func FuzzEditAppsFile(f *testing.F) {
	f.Add([]byte("apps:\n  - name: web\n    version: \"1.0.0\"\n"), "web", "1.0.1", false)
	f.Fuzz(func(t *testing.T, data []byte, app, version string, remove bool) {
		e := AppsEdit{App: app, Version: version, Remove: remove}
		out, ch, err := EditAppsFile(data, e)
		if err != nil {
			if out != nil {
				t.Fatalf("output with error %v", err)
			}
			return
		}
		if !ch.Changed && !bytes.Equal(out, data) {
			t.Fatalf("Changed=false but the data changed:\n%q\n%q", data, out)
		}
		before, err := parseAppsDoc(data)
		if err != nil {
			t.Fatalf("input accepted by EditAppsFile but not by parseAppsDoc: %v", err)
		}
		after, err := parseAppsDoc(out)
		if err != nil {
			t.Fatalf("result does not parse: %v\n%s", err, out)
		}
		want := slices.Clone(names(before))
		i := after.find(app)
		switch {
		case remove && i >= 0:
			t.Fatalf("app %q still listed after removal:\n%s", app, out)
		case remove:
			want = slices.DeleteFunc(want, func(n string) bool { return n == app })
		case i < 0 || after.entries[i].version != version:
			t.Fatalf("app %q does not have version %q:\n%s", app, version, out)
		case !slices.Contains(want, app):
			want = append(want, app)
		}
		if got := names(after); !slices.Equal(got, want) {
			t.Fatalf("entries = %v, want %v", got, want)
		}
		for _, b := range before.entries {
			if j := after.find(b.name); b.name != app && j >= 0 && after.entries[j].version != b.version {
				t.Fatalf("entry %q changed version: %q -> %q", b.name, b.version, after.entries[j].version)
			}
		}
		if _, err := repo.ParseAppsFile("apps.yaml", data); err == nil {
			if _, err := repo.ParseAppsFile("apps.yaml", out); err != nil {
				t.Fatalf("sync/repo accepted the input but rejects the result: %v\n%s", err, out)
			}
		}
		if !remove {
			again, ch2, err := EditAppsFile(out, e)
			if err != nil || ch2.Changed || !bytes.Equal(again, out) {
				t.Fatalf("the same edit again: changed=%v err=%v", ch2.Changed, err)
			}
		}
	})
}

func names(d *appsDoc) []string {
	var n []string
	for _, e := range d.entries {
		n = append(n, e.name)
	}
	return n
}
