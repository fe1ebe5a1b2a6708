package manifests

import (
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/agent"
)

// TestDockerfileMatchesTheManifests checks what docker build cannot check here (no
// Docker engine): the Dockerfile builds the static outpost binary with the module's
// Go version, stamps a version variable that exists, and runs as the uid the
// manifests run as; .dockerignore keeps bin/ out of the context.
func TestDockerfileMatchesTheManifests(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	stages := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a final stage", len(stages))
	}

	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil {
		t.Fatal("go.mod has no go directive")
	}
	goMinor := string(goLine[1])
	if m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindStringSubmatch(df); m == nil || m[1] != goMinor ||
		stages[0][1] != "golang:${GO_VERSION}" {
		t.Errorf("builder %s with GO_VERSION %v, want golang:${GO_VERSION} with the module's Go %s", stages[0][1], m, goMinor)
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build -trimpath", "./cmd/outpost ", "./cmd/outpost-agent", "-tags grpcnotrace", "GOTOOLCHAIN=local"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile's build does not contain %q", want)
		}
	}
	// -X of a variable that does not exist is silently ignored: keep them in step.
	_ = agent.Version
	if !strings.Contains(df, "-X github.com/outpost-gitops/outpost/agent.Version=${VERSION}") {
		t.Error("the Dockerfile does not stamp agent.Version")
	}

	final := stages[len(stages)-1][1]
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %s, want distroless/static or scratch (a static binary)", final)
	}
	last := df[strings.LastIndex(df, "\nFROM "):]
	user := regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?$`).FindStringSubmatch(last)
	uid := podSpec(t, build(t, AgentCluster), "DaemonSet", AgentName).SecurityContext.RunAsUser
	if uid == nil {
		t.Fatal("the agent's pod sets no runAsUser")
	}
	if user == nil || user[1] != strconv.FormatInt(*uid, 10) {
		t.Errorf("final stage USER %v, want the numeric uid the manifests run as (%d)", user, *uid)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/outpost"\]$`).MatchString(last) {
		t.Error("final stage has no ENTRYPOINT of the outpost binary (the hub's manifests pass `hub` as args)")
	}
	// Every command a container of the manifests runs is a binary the final stage copies.
	copied := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^COPY --from=build (.+) (/\S+/)$`).FindAllStringSubmatch(last, -1) {
		for _, src := range strings.Fields(m[1]) {
			copied[m[2]+path.Base(src)] = true
		}
	}
	for _, prof := range []string{AgentCluster, AgentNamespaced, Hub} {
		for _, o := range build(t, prof) {
			if o.GetKind() != "DaemonSet" && o.GetKind() != "Deployment" {
				continue
			}
			for _, c := range podSpec(t, build(t, prof), o.GetKind(), o.GetName()).Containers {
				if len(c.Command) > 0 && !copied[c.Command[0]] {
					t.Errorf("%s %s runs %s, which the image does not have (final stage copies %v)", o.GetKind(), o.GetName(), c.Command[0], copied)
				}
			}
		}
	}

	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^/?bin/?$`).Match(ignore) {
		t.Error(".dockerignore does not exclude bin/ (the testbed binaries)")
	}
}
