package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of an image's layer: a regular file or a directory.
type File struct {
	// Path is the absolute path in the image, e.g. "/usr/local/bin/outpost".
	Path string
	// Mode holds the permission bits, with fs.ModeDir for a directory and
	// fs.ModeSticky for a sticky one (/tmp).
	Mode fs.FileMode
	// UID owns the entry.
	UID int
	// GID is the entry's group.
	GID int
	// Data is the content of a regular file when Source is empty.
	Data []byte
	// Source names a host file whose content the regular file gets (read by Build).
	Source string
}

// Spec describes an image of one layer.
type Spec struct {
	// Files are the layer's entries. Parent directories that are not listed are added
	// as root-owned 0755 directories.
	Files []File
	// User is the config's user, "uid:gid" or a name.
	User string
	// Entrypoint is the config's entrypoint.
	Entrypoint []string
	// Cmd is the config's default arguments.
	Cmd []string
	// Labels are the config's labels.
	Labels map[string]string
	// Env is the config's environment ("NAME=value").
	Env []string
	// Architecture is the platform's CPU architecture. Default "amd64".
	Architecture string
}

// epoch is the modification time of every entry, so the same files give the same
// layer digest.
var epoch = time.Unix(0, 0).UTC()

// Build assembles the image: one layer with spec.Files (in path order, parents first)
// and a config for linux/spec.Architecture.
func Build(spec Spec) (v1.Image, error) {
	layerTar, err := layerTar(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = spec.Architecture
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = spec.User
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.Labels = spec.Labels
	cf.Config.Env = spec.Env
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// layerTar writes the entries, and their missing parent directories, as a tar.
func layerTar(files []File) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("image file %q: want a clean absolute path below /", f.Path)
		}
		if _, dup := entries[f.Path]; dup {
			return nil, fmt.Errorf("image file %s: listed twice", f.Path)
		}
		if f.Source != "" && f.Mode.IsDir() {
			return nil, fmt.Errorf("image file %s: a directory has no source", f.Path)
		}
		entries[f.Path] = f
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/"; dir = path.Dir(dir) {
			if p, ok := entries[dir]; ok {
				if !p.Mode.IsDir() {
					return nil, fmt.Errorf("image file %s: parent %s is not a directory", f.Path, dir)
				}
				continue
			}
			entries[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths) // a parent sorts before its children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := entries[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    int64(f.Mode.Perm()),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if f.Mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		var data []byte
		if f.Mode.IsDir() {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			data = f.Data
			if f.Source != "" {
				var err error
				if data, err = os.ReadFile(f.Source); err != nil {
					return nil, fmt.Errorf("image file %s: %w", p, err)
				}
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image file %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("image file %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as a docker-save style tarball (what `ctr image import` and
// `docker load` read) to file, tagged ref (e.g. "outpost.local/outpost:dev").
func WriteArchive(file, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		return fmt.Errorf("writing image %s to %s: %w", ref, file, err)
	}
	return nil
}
