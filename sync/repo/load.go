package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Load reads and validates everything the repository says about one cluster:
// clusters/<cluster>/cluster.yaml (optional), clusters/<cluster>/apps.yaml
// (required) and apps/<app>/app.yaml (optional) of every listed app. fsys is the
// repository root; paths are confined to it by fsys itself (use LoadDir for a
// directory on disk: it opens it as an os.Root, which refuses symlinks that leave
// the root).
//
// Content problems are *Error values naming file, line and field; I/O problems
// and cancellation are returned wrapped, as they may succeed on retry.
func Load(ctx context.Context, fsys fs.FS, cluster string) (*ClusterSpec, error) {
	if err := ValidateName(cluster); err != nil {
		return nil, &Error{File: ClustersDir, Field: "cluster", Msg: "cluster " + err.Error(), Err: err}
	}
	dir := ClustersDir + "/" + cluster
	if err := requireDir(fsys, dir, fmt.Sprintf("cluster %q not found", cluster)); err != nil {
		return nil, err
	}
	l := &loader{fsys: fsys}
	spec := &ClusterSpec{Name: cluster}
	cfg, err := l.clusterConfig(dir)
	if err != nil {
		return nil, err
	}
	spec.Labels, spec.Vars = cfg.Labels, cfg.Vars
	list, err := l.appsList(dir)
	if err != nil {
		return nil, err
	}
	spec.AllowEmpty = list.AllowEmpty
	if spec.Apps, err = l.apps(ctx, dir+"/"+AppsFile, list); err != nil {
		return nil, err
	}
	if spec.Order, err = orderApps(spec.Apps); err != nil {
		return nil, err
	}
	spec.Files = l.files
	slices.Sort(spec.Files)
	return spec, nil
}

// LoadDir is Load on a repository directory on disk, opened as an os.Root so that
// no path or symlink can lead outside root.
func LoadDir(ctx context.Context, root, cluster string) (*ClusterSpec, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", root, err)
	}
	defer r.Close()
	return Load(ctx, r.FS(), cluster)
}

// ListClusters returns the sorted names of the directories under clusters/. A
// directory whose name is not a valid cluster name is left out and reported in
// the returned error (joined, one *Error each); the valid names are returned
// even then, so one bad directory does not hide the others.
func ListClusters(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ClustersDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", ClustersDir, err)
	}
	var names []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := ValidateName(e.Name()); err != nil {
			errs = append(errs, &Error{File: ClustersDir + "/" + e.Name(), Msg: "cluster " + err.Error(), Err: err})
			continue
		}
		names = append(names, e.Name())
	}
	return names, errors.Join(errs...)
}

// ListClustersDir is ListClusters on a repository directory on disk.
func ListClustersDir(root string) ([]string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", root, err)
	}
	defer r.Close()
	return ListClusters(r.FS())
}

// loader reads the contract files of one Load call and records them.
type loader struct {
	fsys  fs.FS
	files []string
}

func (l *loader) clusterConfig(dir string) (*ClusterConfig, error) {
	file := dir + "/" + ClusterFile
	data, err := l.read(file, true)
	if err != nil || data == nil {
		return &ClusterConfig{}, err
	}
	return ParseClusterFile(file, data)
}

func (l *loader) appsList(dir string) (*AppsList, error) {
	file := dir + "/" + AppsFile
	data, err := l.read(file, false)
	if err != nil {
		return nil, err
	}
	return ParseAppsFile(file, data)
}

// apps resolves every apps.yaml entry: its directory must exist, its app.yaml is
// read when present, and its dependsOn must name apps of the same list.
func (l *loader) apps(ctx context.Context, appsFile string, list *AppsList) ([]App, error) {
	listed := make(map[string]bool, len(list.Apps))
	for _, e := range list.Apps {
		listed[e.Name] = true
	}
	apps := make([]App, 0, len(list.Apps))
	for i, e := range list.Apps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		app, err := l.app(appsFile, i, e)
		if err != nil {
			return nil, err
		}
		if err := checkDependsOn(app, appsFile, listed); err != nil {
			return nil, err
		}
		apps = append(apps, app)
	}
	return apps, nil
}

func (l *loader) app(appsFile string, i int, e AppEntry) (App, error) {
	app := App{Name: e.Name, Version: e.Version, Vars: e.Vars, Path: AppsDir + "/" + e.Name, Config: DefaultAppConfig()}
	msg := fmt.Sprintf("unknown app %q: no directory %s/", e.Name, app.Path)
	if err := requireDir(l.fsys, app.Path, msg); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File, ce.Line, ce.Field = appsFile, e.line, fmt.Sprintf("apps[%d].name", i)
		}
		return app, err
	}
	file := app.Path + "/" + AppFile
	data, err := l.read(file, true)
	if err != nil || data == nil {
		return app, err
	}
	cfg, err := ParseAppFile(file, data)
	if err != nil {
		return app, err
	}
	app.ConfigFile, app.Config = file, *cfg
	return app, nil
}

// checkDependsOn refuses a dependency on the app itself or on an app that is not
// in this cluster's apps.yaml.
func checkDependsOn(app App, appsFile string, listed map[string]bool) error {
	for i, d := range app.Config.DependsOn {
		line := app.Config.dependsOnLines[i]
		field := fmt.Sprintf("dependsOn[%d]", i)
		if d == app.Name {
			return errAt(app.ConfigFile, line, field, "app %q depends on itself", d)
		}
		if !listed[d] {
			return errAt(app.ConfigFile, line, field, "app %q is not deployed to this cluster (not listed in %s)", d, appsFile)
		}
	}
	return nil
}

// orderApps runs Order and turns a cycle into an *Error at the first app.yaml of
// the cycle.
func orderApps(apps []App) ([][]string, error) {
	deps := make(map[string][]string, len(apps))
	files := make(map[string]App, len(apps))
	for _, a := range apps {
		deps[a.Name] = a.Config.DependsOn
		files[a.Name] = a
	}
	order, err := Order(deps)
	var cycle *CycleError
	if errors.As(err, &cycle) {
		a := files[cycle.Cycle[0]]
		i := slices.Index(a.Config.DependsOn, cycle.Cycle[1])
		return nil, &Error{File: a.ConfigFile, Line: a.Config.dependsOnLines[i],
			Field: fmt.Sprintf("dependsOn[%d]", i), Msg: cycle.Error(), Err: cycle}
	}
	return order, err
}

// requireDir returns an *Error with msg unless path is a directory.
func requireDir(fsys fs.FS, path, msg string) error {
	fi, err := fs.Stat(fsys, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{File: path, Msg: msg, Err: err}
	case err != nil && isEscape(err):
		return &Error{File: path, Msg: path + " leads outside the repository (symlink?)", Err: err}
	case err != nil:
		return fmt.Errorf("stat %s: %w", path, err)
	case !fi.IsDir():
		return &Error{File: path, Msg: msg + " (not a directory)"}
	}
	return nil
}

// read returns a file's content, refusing files over MaxFileSize and anything
// but regular files. A missing optional file is (nil, nil).
func (l *loader) read(file string, optional bool) ([]byte, error) {
	data, err := ReadFile(l.fsys, file)
	var ce *Error
	if optional && errors.As(err, &ce) && errors.Is(ce.Err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		l.files = append(l.files, file)
	}
	return data, err
}

// ReadFile reads one repository file with the limits every Outpost read obeys:
// a regular file (after symlinks, which fsys confines) of at most MaxFileSize
// bytes. Content problems (missing, too big, not a regular file, outside the
// root) are *Error values; other I/O errors are wrapped.
//
// The file is stat'ed before it is opened: opening a FIFO would block.
func ReadFile(fsys fs.FS, file string) ([]byte, error) {
	fi, err := fs.Stat(fsys, file)
	if err != nil {
		return nil, openError(file, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: file, Msg: "not a regular file"}
	}
	if fi.Size() > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is %d bytes, more than the limit of %d", fi.Size(), MaxFileSize)}
	}
	f, err := fsys.Open(file)
	if err != nil {
		return nil, openError(file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is more than the limit of %d bytes", MaxFileSize)}
	}
	return data, nil
}

func openError(file string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{File: file, Msg: "file not found", Err: err}
	case isEscape(err):
		return &Error{File: file, Msg: file + " leads outside the repository (symlink?)", Err: err}
	}
	return fmt.Errorf("open %s: %w", file, err)
}

// isEscape reports whether err is an os.Root refusal of a path leaving the root.
func isEscape(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "path escapes from parent") ||
		errors.Is(err, fs.ErrInvalid))
}
