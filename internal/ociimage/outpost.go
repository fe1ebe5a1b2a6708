package ociimage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The Outpost image, as the repository's Dockerfile builds it: its base and what the
// final stage adds. dockerfile_test.go parses the Dockerfile and fails when these and
// the Dockerfile part ways.
const (
	// DockerfileBase is the Dockerfile's final FROM: Outpost's Spec supplies the files
	// of this base that the binaries need (CA certificates, passwd and group with
	// nonroot, /tmp, the nonroot home).
	DockerfileBase = "gcr.io/distroless/static-debian12:nonroot"
	// NonrootUID is distroless's nonroot user and group, the Dockerfile's USER and the
	// manifests' runAsUser.
	NonrootUID = 65532
	// BinDir is where the Dockerfile copies the two binaries.
	BinDir = "/usr/local/bin"
	// VersionSymbol is the variable stamped with the version at link time.
	VersionSymbol = "github.com/outpost-gitops/outpost/agent.Version"
	// HostCACertificates is Debian's CA bundle, distroless's source of the same file.
	HostCACertificates = "/etc/ssl/certs/ca-certificates.crt"
)

// OutpostBinaries are the two static binaries of the image.
type OutpostBinaries struct {
	// Outpost is cmd/outpost: hub, CLI and `outpost agent`; the entrypoint.
	Outpost string
	// Agent is cmd/outpost-agent, the agent alone (what the DaemonSet runs).
	Agent string
}

// OutpostOptions configure Outpost.
type OutpostOptions struct {
	// Binaries are the static binaries to copy (see BuildOutpost).
	Binaries OutpostBinaries
	// CACertificates is the PEM bundle installed as /etc/ssl/certs/ca-certificates.crt.
	// Default HostCACertificates.
	CACertificates string
	// Version is the image's org.opencontainers.image.version label. Default "dev".
	Version string
}

// Outpost returns the Spec of the image the Dockerfile builds: the two binaries in
// BinDir, the base's files they rely on, USER 65532:65532, ENTRYPOINT outpost, CMD
// --help and the Dockerfile's labels.
func Outpost(opts OutpostOptions) (Spec, error) {
	if opts.CACertificates == "" {
		opts.CACertificates = HostCACertificates
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	for _, f := range []string{opts.Binaries.Outpost, opts.Binaries.Agent, opts.CACertificates} {
		if f == "" {
			return Spec{}, fmt.Errorf("outpost image: a binary path is empty")
		}
		if _, err := os.Stat(f); err != nil {
			return Spec{}, fmt.Errorf("outpost image: %w", err)
		}
	}
	uid := fmt.Sprint(NonrootUID)
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:" + uid + ":" + uid + ":nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:" + uid + ":\n"
	return Spec{
		Files: []File{
			{Path: filepath.Join(BinDir, "outpost"), Mode: 0o755, Source: opts.Binaries.Outpost},
			{Path: filepath.Join(BinDir, "outpost-agent"), Mode: 0o755, Source: opts.Binaries.Agent},
			{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Source: opts.CACertificates},
			{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
			{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
			{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")},
			{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: NonrootUID, GID: NonrootUID},
			{Path: "/root", Mode: fs.ModeDir | 0o700},
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		},
		User:       uid + ":" + uid,
		Entrypoint: []string{filepath.Join(BinDir, "outpost")},
		Cmd:        []string{"--help"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "outpost",
			"org.opencontainers.image.description": "Outpost multi-cluster GitOps: hub and agent",
			"org.opencontainers.image.source":      "https://github.com/outpost-gitops/outpost",
			"org.opencontainers.image.version":     opts.Version,
		},
	}, nil
}

// GoBuildArgs are the `go build` arguments of the Dockerfile's build stage, before the
// packages: static (with CGO_ENABLED=0 in the environment), trimmed, stamped.
func GoBuildArgs(version, outDir string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false", "-tags", "grpcnotrace",
		"-ldflags", "-s -w -X " + VersionSymbol + "=" + version,
		"-o", outDir + string(filepath.Separator)}
}

// BuildOutpost compiles cmd/outpost and cmd/outpost-agent of the module in moduleDir
// into outDir as the Dockerfile does (CGO_ENABLED=0, GoBuildArgs).
func BuildOutpost(ctx context.Context, goBin, moduleDir, outDir, version string) (OutpostBinaries, error) {
	args := append(GoBuildArgs(version, outDir), "./cmd/outpost", "./cmd/outpost-agent")
	if err := goBuild(ctx, goBin, moduleDir, args); err != nil {
		return OutpostBinaries{}, err
	}
	return OutpostBinaries{Outpost: filepath.Join(outDir, "outpost"), Agent: filepath.Join(outDir, "outpost-agent")}, nil
}

// PausePackage is the package of the pause program, relative to the module root.
const PausePackage = "./internal/ociimage/pause"

// BuildPause compiles the pause program (PausePackage) of the module in moduleDir
// into outDir and returns its path.
func BuildPause(ctx context.Context, goBin, moduleDir, outDir string) (string, error) {
	out := filepath.Join(outDir, "pause")
	if err := goBuild(ctx, goBin, moduleDir, []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out, PausePackage}); err != nil {
		return "", err
	}
	return out, nil
}

// Pause returns the Spec of the sandbox image: the pause binary as /pause, run as
// 65535 like registry.k8s.io/pause.
func Pause(binary string) Spec {
	return Spec{
		Files:      []File{{Path: "/pause", Mode: 0o755, Source: binary}},
		User:       "65535:65535",
		Entrypoint: []string{"/pause"},
	}
}

// StandIn returns the Spec of an image standing in for a web server the testbed cannot
// pull (e.g. nginx of examples/apps/web): the pause binary answering HTTP 200 on port
// 80, as root like nginx.
func StandIn(pauseBinary string) Spec {
	return Spec{
		Files:      []File{{Path: "/pause", Mode: 0o755, Source: pauseBinary}},
		Entrypoint: []string{"/pause", "-listen=:80"},
	}
}

func goBuild(ctx context.Context, goBin, dir string, args []string) error {
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}
