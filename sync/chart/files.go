package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
)

// Limits bound what one chart may take; the zero value of a field is its default.
type Limits struct {
	// ArchiveSize is the largest chart archive (.tgz) downloaded or read, in bytes.
	// Default 16 MiB.
	ArchiveSize int64
	// ChartSize is the largest total size of a chart's files once decompressed
	// (subchart archives included), in bytes. Default 64 MiB.
	ChartSize int64
	// Files is the largest number of files in a chart. Default 10000.
	Files int
}

// WithDefaults fills the zero fields; every default lives here.
func (l Limits) WithDefaults() Limits {
	if l.ArchiveSize <= 0 {
		l.ArchiveSize = 16 << 20
	}
	if l.ChartSize <= 0 {
		l.ChartSize = 64 << 20
	}
	if l.Files <= 0 {
		l.Files = 10000
	}
	return l
}

// budget counts what a chart has taken so far against Limits.
type budget struct {
	lim   Limits
	bytes int64
	files int
}

func (b *budget) take(name string, n int64) error {
	b.bytes += n
	b.files++
	switch {
	case b.bytes > b.lim.ChartSize:
		return fmt.Errorf("%s: the chart's files add up to more than the limit of %d bytes (decompressed)", name, b.lim.ChartSize)
	case b.files > b.lim.Files:
		return fmt.Errorf("%s: the chart has more than the limit of %d files", name, b.lim.Files)
	}
	return nil
}

// LoadDir loads the chart in directory dir (slash-separated, relative to root) of
// the repository opened as root, and returns the files it read (relative to root).
// Every read goes through root, so a symlink that leads outside the repository is an
// error; a symlinked directory is refused, as are files other than regular ones.
// .helmignore is honoured as Helm does.
func LoadDir(root *os.Root, dir string, lim Limits) (*chartv2.Chart, []string, error) {
	b := &budget{lim: lim.WithDefaults()}
	fsys := root.FS()
	fi, err := fs.Stat(fsys, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("chart directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("chart directory %s: not a directory", dir)
	}
	rules := ignore.Empty()
	if data, err := fs.ReadFile(fsys, dir+"/"+ignore.HelmIgnore); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, nil, fmt.Errorf("%s/%s: %w", dir, ignore.HelmIgnore, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s/%s: %w", dir, ignore.HelmIgnore, err)
	}
	rules.AddDefaults()
	var files []*archive.BufferedFile
	var read []string
	err = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if rel == "" {
			return nil
		}
		fi, err := fs.Stat(fsys, p) // follows a symlink, inside the root only
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if rules.Ignore(rel, fi) {
			if fi.IsDir() && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return nil
		case fi.IsDir():
			return fmt.Errorf("%s: a symlink to a directory is not supported in a chart", p)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file", p)
		}
		if err := b.take(p, fi.Size()); err != nil {
			return err
		}
		data, err := readLimited(fsys, p, fi.Size())
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: rel, Data: data})
		read = append(read, p)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	c, err := loadFiles(files)
	return c, read, err
}

func readLimited(fsys fs.FS, p string, size int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, size+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(data)) > size {
		return nil, fmt.Errorf("%s: file grew while it was read", p)
	}
	return data, nil
}

// LoadArchive loads a chart from its .tgz archive with the limits: only regular
// files and directories (a symlink, hard link or device is an error), no absolute
// path or ".." element, at most lim.ArchiveSize compressed and lim.ChartSize
// decompressed bytes. Subchart archives (charts/*.tgz) are expanded the same way,
// against the same budget.
func LoadArchive(data []byte, lim Limits) (*chartv2.Chart, error) {
	b := &budget{lim: lim.WithDefaults()}
	if int64(len(data)) > b.lim.ArchiveSize {
		return nil, fmt.Errorf("chart archive is %d bytes, more than the limit of %d", len(data), b.lim.ArchiveSize)
	}
	files, _, err := expand(data, b, "")
	if err != nil {
		return nil, err
	}
	return loadFiles(files)
}

// expand reads one chart archive; names are made relative to the archive's single
// top directory (returned), with prefix in front.
func expand(data []byte, b *budget, prefix string) ([]*archive.BufferedFile, string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("chart archive %s: not a gzip file: %w", orTop(prefix), err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var files []*archive.BufferedFile
	top := ""
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("chart archive %s: %w", orTop(prefix), err)
		}
		name := hd.Name
		switch hd.Typeflag {
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		case tar.TypeDir, tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return nil, "", fmt.Errorf("chart archive %s: %s is a link (to %q): links are not allowed in a chart", orTop(prefix), name, hd.Linkname)
		default:
			return nil, "", fmt.Errorf("chart archive %s: %s is not a regular file (type %q)", orTop(prefix), name, hd.Typeflag)
		}
		if strings.ContainsRune(name, '\\') || path.IsAbs(name) || hasDotDot(name) {
			return nil, "", fmt.Errorf("chart archive %s: entry %q leaves the chart directory (absolute path, '..' or '\\')", orTop(prefix), name)
		}
		clean := path.Clean(name)
		first, rest, _ := strings.Cut(clean, "/")
		if top == "" {
			top = first
		} else if first != top {
			return nil, "", fmt.Errorf("chart archive %s: entry %q is outside the chart's directory %q", orTop(prefix), name, top)
		}
		if hd.Typeflag == tar.TypeDir || rest == "" {
			continue
		}
		if hd.Size < 0 {
			return nil, "", fmt.Errorf("chart archive %s: entry %q has a negative size", orTop(prefix), name)
		}
		if err := b.take(prefix+rest, hd.Size); err != nil {
			return nil, "", err
		}
		buf, err := io.ReadAll(io.LimitReader(tr, hd.Size))
		if err != nil {
			return nil, "", fmt.Errorf("chart archive %s: %s: %w", orTop(prefix), name, err)
		}
		if sub, ok := subchartArchive(rest); ok {
			subFiles, _, err := expand(buf, b, prefix+"charts/"+sub+"/")
			if err != nil {
				return nil, "", err
			}
			files = append(files, subFiles...)
			continue
		}
		files = append(files, &archive.BufferedFile{Name: prefix + rest, Data: buf})
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("chart archive %s: holds no files", orTop(prefix))
	}
	return files, top, nil
}

// subchartArchive reports whether rest is charts/<name>.tgz directly under the chart.
func subchartArchive(rest string) (string, bool) {
	dir, file := path.Split(rest)
	if dir != "charts/" || !strings.HasSuffix(file, ".tgz") {
		return "", false
	}
	return strings.TrimSuffix(file, ".tgz"), true
}

func hasDotDot(name string) bool {
	for el := range strings.SplitSeq(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

func orTop(prefix string) string {
	if prefix == "" {
		return "(top)"
	}
	return strings.TrimSuffix(prefix, "/")
}

// loadFiles builds the chart with Helm's loader.
func loadFiles(files []*archive.BufferedFile) (*chartv2.Chart, error) {
	if len(files) == 0 {
		return nil, errors.New("the chart holds no files")
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	return c, nil
}
