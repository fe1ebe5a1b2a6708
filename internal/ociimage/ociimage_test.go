package ociimage

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// dockerfile is the final stage of the repository's Dockerfile and the build stage's
// go build command, as far as the image's content depends on them.
type dockerfile struct {
	base       string            // the last FROM
	copies     map[string]string // image path → source path, of COPY --from=build
	user       string
	entrypoint []string
	cmd        []string
	labels     []string // keys
	goBuild    string   // the RUN line of go build, continuations joined
	env        []string // the build stage's ENV assignments
}

// parseDockerfile reads the instructions the image depends on, joining continued lines.
func parseDockerfile(t *testing.T, file string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur string
	for _, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		lines = append(lines, cur+trimmed)
		cur = ""
	}
	d := dockerfile{copies: map[string]string{}}
	final := false
	for _, l := range lines {
		inst, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(inst) {
		case "FROM":
			fields := strings.Fields(rest)
			d.base = fields[len(fields)-1]
			if len(fields) >= 3 && strings.EqualFold(fields[len(fields)-2], "AS") {
				d.base = fields[len(fields)-3]
			}
			final = !strings.Contains(rest, " AS ")
		case "ENV":
			if !final {
				d.env = append(d.env, strings.Fields(rest)...)
			}
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.goBuild = rest
			}
		case "COPY":
			if !final {
				continue
			}
			fields := strings.Fields(rest)
			if !strings.HasPrefix(fields[0], "--from=build") {
				t.Fatalf("Dockerfile: COPY %s: only COPY --from=build is mirrored by ociimage.Outpost; add the file to Outpost's Spec and to this test", rest)
			}
			dest := fields[len(fields)-1]
			for _, src := range fields[1 : len(fields)-1] {
				target := dest
				if strings.HasSuffix(dest, "/") {
					target = path.Join(dest, path.Base(src))
				}
				d.copies[target] = src
			}
		case "USER":
			if final {
				d.user = rest
			}
		case "ENTRYPOINT":
			if final {
				d.entrypoint = jsonArray(t, "ENTRYPOINT", rest)
			}
		case "CMD":
			if final {
				d.cmd = jsonArray(t, "CMD", rest)
			}
		case "LABEL":
			if final {
				for _, m := range regexp.MustCompile(`([a-z0-9.]+)=`).FindAllStringSubmatch(rest, -1) {
					d.labels = append(d.labels, m[1])
				}
			}
		}
	}
	return d
}

func jsonArray(t *testing.T, inst, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("Dockerfile %s %s: want the JSON (exec) form: %v", inst, s, err)
	}
	return v
}

// fakeOutpost writes two small files standing in for the binaries.
func fakeOutpost(t *testing.T) OutpostOptions {
	dir := t.TempDir()
	bins := OutpostBinaries{Outpost: filepath.Join(dir, "outpost"), Agent: filepath.Join(dir, "outpost-agent")}
	for _, f := range []string{bins.Outpost, bins.Agent} {
		if err := os.WriteFile(f, []byte("binary "+filepath.Base(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return OutpostOptions{Binaries: bins, CACertificates: ca, Version: "v9.9.9"}
}

// entries flattens an image's filesystem: path → tar header and content.
func entries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(h.Name, "/")] = h
	}
}

// TestOutpostMatchesDockerfile keeps ociimage.Outpost in step with the Dockerfile: the
// same base (whose files Outpost supplies), the binaries at the COPY destinations built
// with the same go build flags, the same USER, ENTRYPOINT, CMD and labels.
func TestOutpostMatchesDockerfile(t *testing.T) {
	d := parseDockerfile(t, filepath.Join("..", "..", "Dockerfile"))
	if d.base != DockerfileBase {
		t.Errorf("Dockerfile's final FROM is %q, ociimage.DockerfileBase %q: supply the new base's files in Outpost and update the constant", d.base, DockerfileBase)
	}
	opts := fakeOutpost(t)
	spec, err := Outpost(opts)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	files := entries(t, img)
	wantCopies := map[string]string{ // the build stage's output → the binary Outpost copies
		"/out/outpost":       opts.Binaries.Outpost,
		"/out/outpost-agent": opts.Binaries.Agent,
	}
	if len(d.copies) != len(wantCopies) {
		t.Errorf("Dockerfile copies %v; Outpost copies %v", d.copies, wantCopies)
	}
	for target, src := range d.copies {
		h, ok := files[target]
		switch {
		case !ok:
			t.Errorf("Dockerfile copies %s to %s; the assembled image has no %s", src, target, target)
		case h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 || h.Uid != 0:
			t.Errorf("%s in the image: type %c mode %o uid %d, want a root-owned executable", target, h.Typeflag, h.Mode, h.Uid)
		case wantCopies[src] == "" || h.Size != fileSize(t, wantCopies[src]):
			t.Errorf("%s in the image (%d bytes) is not the binary the Dockerfile builds as %s", target, h.Size, src)
		}
	}
	for _, flag := range []string{"-trimpath", "-buildvcs=false", "-tags grpcnotrace", `-ldflags "-s -w -X ` + VersionSymbol + "=", "-o /out/ ./cmd/outpost ./cmd/outpost-agent"} {
		if !strings.Contains(d.goBuild, flag) {
			t.Errorf("Dockerfile's go build %q has no %q; GoBuildArgs builds with it", d.goBuild, flag)
		}
	}
	if !slices.Contains(d.env, "CGO_ENABLED=0") {
		t.Errorf("Dockerfile's build stage ENV %q has no CGO_ENABLED=0; BuildOutpost builds static binaries", d.env)
	}
	args := strings.Join(GoBuildArgs("V", "/out"), " ")
	for _, flag := range []string{"-trimpath", "-buildvcs=false", "-tags grpcnotrace", "-s -w -X " + VersionSymbol + "=V"} {
		if !strings.Contains(args, flag) {
			t.Errorf("GoBuildArgs %q lacks the Dockerfile's %q", args, flag)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != d.user {
		t.Errorf("image user %q, Dockerfile USER %q", cf.Config.User, d.user)
	}
	if d.user != "65532:65532" {
		t.Errorf("Dockerfile USER %q: the manifests run as 65532 (NonrootUID)", d.user)
	}
	if !slices.Equal(cf.Config.Entrypoint, d.entrypoint) {
		t.Errorf("image entrypoint %q, Dockerfile ENTRYPOINT %q", cf.Config.Entrypoint, d.entrypoint)
	}
	if !slices.Equal(cf.Config.Cmd, d.cmd) {
		t.Errorf("image cmd %q, Dockerfile CMD %q", cf.Config.Cmd, d.cmd)
	}
	var keys []string
	for k := range cf.Config.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(d.labels)
	if !slices.Equal(keys, d.labels) {
		t.Errorf("image labels %q, Dockerfile LABEL %q", keys, d.labels)
	}
	if v := cf.Config.Labels["org.opencontainers.image.version"]; v != opts.Version {
		t.Errorf("version label %q, want %q", v, opts.Version)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}

	// What the binaries rely on from distroless: the nonroot user, CA certificates, /tmp.
	passwd := string(readEntry(t, img, "/etc/passwd"))
	if !strings.Contains(passwd, "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot 65532:65532:\n%s", passwd)
	}
	if got := string(readEntry(t, img, "/etc/ssl/certs/ca-certificates.crt")); got != "-----BEGIN CERTIFICATE-----\n" {
		t.Errorf("CA bundle %q is not the given one", got)
	}
	if h := files["/tmp"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp: %+v, want a 1777 directory", h)
	}
	if h := files["/home/nonroot"]; h == nil || h.Uid != NonrootUID || h.Gid != NonrootUID {
		t.Errorf("/home/nonroot: %+v, want owned by 65532", h)
	}
}

func fileSize(t *testing.T, f string) int64 {
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func readEntry(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", name, err)
		}
		if "/"+h.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

// TestBuildIsReproducible: the same files give the same image digest, so re-importing
// an unchanged image into containerd is a no-op.
func TestBuildIsReproducible(t *testing.T) {
	spec, err := Outpost(fakeOutpost(t))
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for range 2 {
		img, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same spec: %s and %s", digests[0], digests[1])
	}
}

func TestBuildRejectsBadFiles(t *testing.T) {
	cases := map[string]struct {
		files []File
		want  string
	}{
		"relative path":       {[]File{{Path: "etc/passwd"}}, `"etc/passwd": want a clean absolute path`},
		"unclean path":        {[]File{{Path: "/etc/../passwd"}}, `"/etc/../passwd": want a clean absolute path`},
		"root":                {[]File{{Path: "/", Mode: fs.ModeDir}}, `"/": want a clean absolute path`},
		"duplicate":           {[]File{{Path: "/a"}, {Path: "/a"}}, "/a: listed twice"},
		"parent is a file":    {[]File{{Path: "/a"}, {Path: "/a/b"}}, "/a/b: parent /a is not a directory"},
		"directory w/ source": {[]File{{Path: "/d", Mode: fs.ModeDir, Source: "/etc/hostname"}}, "/d: a directory has no source"},
		"missing source":      {[]File{{Path: "/x", Source: "/does/not/exist"}}, "/x: open /does/not/exist"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Build(Spec{Files: tc.files})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestWriteArchive writes the pause image and reads it back as `ctr image import` and
// `docker load` would: one tagged image, its entrypoint and file.
func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pause-bin")
	if err := os.WriteFile(bin, []byte("#!pause"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := Build(Pause(bin))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "pause.tar")
	if err := WriteArchive(archive, "outpost.local/pause:testbed", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"outpost.local/pause:testbed"}) {
		t.Errorf("archive manifest %+v, want one image tagged outpost.local/pause:testbed", m)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("entrypoint %q", cf.Config.Entrypoint)
	}
	if got := string(readEntry(t, back, "/pause")); got != "#!pause" {
		t.Errorf("/pause is %q", got)
	}
	if err := WriteArchive(filepath.Join(dir, "x.tar"), "Not A Ref!", img); err == nil || !strings.Contains(err.Error(), `image reference "Not A Ref!"`) {
		t.Errorf("bad reference: %v", err)
	}
}
