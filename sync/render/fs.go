package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// errReadOnly is returned by every write to the repository file system.
var errReadOnly = errors.New("the repository is read-only during render")

// guardedFS is the file system kustomize sees below the in-memory overlay. It
// wraps fluxcd's secure on-disk FS (every path, after symlinks, must be inside
// the root) and adds what Outpost needs on top:
//   - read-only: writes fail, so a render can never change the checkout;
//   - a size limit: a file over repo.MaxFileSize is refused before it is read;
//   - an alias-bomb guard: YAML whose aliases expand past repo.MaxYAMLNodes is
//     refused before kustomize (whose kyaml expands aliases without limit) sees it;
//   - a record of the files read, for Result.Sources;
//   - once guardKustomizations is set (for the build, after the precheck), a
//     kustomization file with a reference kustomize would fetch over HTTP or clone
//     with git is refused when kustomize reads it, before kustomize can act on it.
//
// One guardedFS serves one render; it is not safe for concurrent use.
type guardedFS struct {
	filesys.FileSystem // the secure on-disk FS
	root               string
	reads              map[string]bool
	// guardKustomizations makes ReadFile refuse kustomization files that reference
	// anything remote (remoteRef).
	guardKustomizations bool
	// refused is the first refusal of guardKustomizations: kustomize takes a read
	// error of a kustomization file for "not found", so the build reports this one.
	refused error
}

func newGuardedFS(secure filesys.FileSystem, root string) *guardedFS {
	return &guardedFS{FileSystem: secure, root: root, reads: map[string]bool{}}
}

// rel returns path relative to the root with forward slashes, for messages.
func (g *guardedFS) rel(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	r, err := filepath.Rel(g.root, abs)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

// check refuses a path the secure FS refuses, a non-regular file (opening a FIFO
// would block) and a file over the size limit; it stats without opening.
func (g *guardedFS) check(path string) error {
	if !g.FileSystem.Exists(path) {
		// The secure FS says "does not exist" for paths outside the root too: ask
		// it to read, which returns its ConstraintError or a not-found error.
		_, err := g.FileSystem.ReadFile(path)
		if err == nil {
			err = fmt.Errorf("%s: file disappeared", g.rel(path))
		}
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	switch {
	case !fi.Mode().IsRegular():
		return &repo.Error{File: g.rel(path), Msg: "not a regular file"}
	case fi.Size() > repo.MaxFileSize:
		return &repo.Error{File: g.rel(path), Msg: fmt.Sprintf("file is %d bytes, more than the limit of %d", fi.Size(), repo.MaxFileSize)}
	}
	return nil
}

// ReadFile reads a file after check, then refuses alias bombs.
func (g *guardedFS) ReadFile(path string) ([]byte, error) {
	if err := g.check(path); err != nil {
		return nil, err
	}
	data, err := g.FileSystem.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > repo.MaxFileSize {
		return nil, &repo.Error{File: g.rel(path), Msg: fmt.Sprintf("file is more than the limit of %d bytes", repo.MaxFileSize)}
	}
	if err := repo.CheckYAMLExpansion(data); err != nil {
		return nil, &repo.Error{File: g.rel(path), Msg: err.Error()}
	}
	if err := checkYAMLSyntax(g.rel(path), data); err != nil {
		return nil, err
	}
	if g.guardKustomizations && slices.Contains(konfig.RecognizedKustomizationFileNames(), filepath.Base(path)) {
		if err := refuseRemoteRefs(g.rel(path), data); err != nil {
			if g.refused == nil {
				g.refused = err
			}
			return nil, err
		}
	}
	g.reads[g.rel(path)] = true
	return data, nil
}

// Open is guarded like ReadFile (kustomize reads through ReadFile; Open is here
// so that no read path escapes the checks).
func (g *guardedFS) Open(path string) (filesys.File, error) {
	if err := g.check(path); err != nil {
		return nil, err
	}
	g.reads[g.rel(path)] = true
	return g.FileSystem.Open(path)
}

func (g *guardedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (g *guardedFS) Mkdir(string) error                  { return errReadOnly }
func (g *guardedFS) MkdirAll(string) error               { return errReadOnly }
func (g *guardedFS) RemoveAll(string) error              { return errReadOnly }
func (g *guardedFS) WriteFile(string, []byte) error      { return errReadOnly }

// sources returns the repo-relative files read so far, sorted.
func (g *guardedFS) sources() []string {
	out := make([]string, 0, len(g.reads))
	for f := range g.reads {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// yamlLine finds the line number in a YAML parser error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// checkYAMLSyntax parses every document of a YAML file so that a syntax error is
// reported with the repo-relative file and line; kustomize would name the file
// relative to the kustomization only.
func checkYAMLSyntax(rel string, data []byte) error {
	if ext := filepath.Ext(rel); ext != ".yaml" && ext != ".yml" {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			e := &repo.Error{File: rel, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Msg = "invalid YAML: " + strings.TrimPrefix(err.Error(), m[0])
			}
			return e
		}
	}
}
