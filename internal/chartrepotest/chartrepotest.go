// Package chartrepotest is an HTTP Helm chart repository in memory, for tests and
// benchmarks: it serves index.yaml and one .tgz archive per published version of one
// chart, packaged in code, and counts the archives' downloads.
package chartrepotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
)

// Repo is a chart repository serving versions of one chart.
type Repo struct {
	// URL is the repository's base URL (helm.repo in app.yaml).
	URL string

	chart string
	files func(version string) map[string]string
	srv   *httptest.Server

	mu        sync.Mutex
	archives  map[string][]byte // version → .tgz
	order     []string          // versions in publication order
	downloads map[string]int    // version → archive downloads
}

// New starts a repository of the chart called chart on a loopback port. files gives
// a version's files, relative to the chart's directory (templates/cm.yaml, ...);
// Chart.yaml is written by the repository. Nothing is published until Publish.
func New(chart string, files func(version string) map[string]string) *Repo {
	r := &Repo{chart: chart, files: files, archives: map[string][]byte{}, downloads: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	return r
}

// Close stops the repository.
func (r *Repo) Close() { r.srv.Close() }

// Publish packages version and adds it to the index.
func (r *Repo) Publish(version string) error {
	files := map[string]string{"Chart.yaml": "apiVersion: v2\nname: " + r.chart + "\nversion: " + version + "\n"}
	for name, body := range r.files(version) {
		files[name] = body
	}
	data, err := Package(r.chart, files)
	if err != nil {
		return fmt.Errorf("chart %s %s: %w", r.chart, version, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.archives[version]; !ok {
		r.order = append(r.order, version)
	}
	r.archives[version] = data
	return nil
}

// Downloads returns how many times version's archive was downloaded.
func (r *Repo) Downloads(version string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downloads[version]
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/index.yaml" {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: v1\nentries:\n  %s:\n", r.chart)
		for _, v := range slices.Backward(r.order) {
			fmt.Fprintf(&b, "    - {version: %q, urls: [%s-%s.tgz]}\n", v, r.chart, v)
		}
		_, _ = w.Write([]byte(b.String()))
		return
	}
	name, isChart := strings.CutPrefix(req.URL.Path, "/"+r.chart+"-")
	v, isArchive := strings.CutSuffix(name, ".tgz")
	if isChart && isArchive {
		if data, found := r.archives[v]; found {
			r.downloads[v]++
			_, _ = w.Write(data)
			return
		}
	}
	http.NotFound(w, req)
}

// Package returns a chart archive (.tgz) of files under the directory dir, as helm
// package lays it out; files are written in name order.
func Package(dir string, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		body := files[name]
		hdr := &tar.Header{Name: dir + "/" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("archive entry %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, fmt.Errorf("archive entry %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return buf.Bytes(), nil
}
