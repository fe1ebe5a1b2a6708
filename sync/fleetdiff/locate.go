package fleetdiff

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// locateObject finds the manifest of an object a render error names ("Kind[.group]/
// [namespace/]name"), among the YAML files of the app's folder: the file and the line
// its document starts at. It returns "" when no document matches (the object may come
// from a base outside the folder, or be generated).
func locateObject(root, app, ref string) (string, int) {
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return "", 0
	}
	kind, _, _ := strings.Cut(parts[0], ".")
	name := parts[len(parts)-1]
	if kind == "" || name == "" || name == "<none>" {
		return "", 0
	}
	dir := filepath.Join(root, repo.AppsDir, app)
	var file string
	var line int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || file != "" {
			return fs.SkipDir
		}
		if d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || len(data) > repo.MaxFileSize {
			return nil
		}
		if l := findDocument(data, kind, name); l > 0 {
			rel, _ := filepath.Rel(root, p)
			file, line = path.Clean(filepath.ToSlash(rel)), l
		}
		return nil
	})
	return file, line
}

// findDocument returns the line where the YAML document of kind and name starts in
// data, or 0.
func findDocument(data []byte, kind, name string) int {
	var doc bytes.Buffer
	start, n := 1, 0
	check := func() int {
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal(doc.Bytes(), &m) == nil && m.Kind == kind && m.Metadata.Name == name {
			return start
		}
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), repo.MaxFileSize)
	for sc.Scan() {
		n++
		if t := sc.Text(); strings.HasPrefix(t, "---") && strings.TrimSpace(strings.TrimLeft(t, "-")) == "" {
			if l := check(); l > 0 {
				return l
			}
			doc.Reset()
			start = n + 1
			continue
		}
		doc.WriteString(sc.Text())
		doc.WriteByte('\n')
	}
	return check()
}
