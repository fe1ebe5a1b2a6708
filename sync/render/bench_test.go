package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// benchRepo writes a repository with apps apps of objs objects each (plain
// folders, a few variables per object) and returns its root.
func benchRepo(b *testing.B, apps, objs int) string {
	b.Helper()
	root := b.TempDir()
	var list strings.Builder
	list.WriteString("apps:\n")
	for a := range apps {
		name := fmt.Sprintf("app%03d", a)
		fmt.Fprintf(&list, "  - name: %s\n    version: \"1.%d.0\"\n    vars: {replicas: \"2\"}\n", name, a)
		var m strings.Builder
		for o := range objs {
			fmt.Fprintf(&m, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-%d\ndata:\n  version: ${APP_VERSION}\n  cluster: ${CLUSTER_NAME}\n  replicas: \"${replicas}\"\n", name, o)
		}
		writeFileB(b, filepath.Join(root, "apps", name, "manifests.yaml"), m.String())
		writeFileB(b, filepath.Join(root, "apps", name, "app.yaml"), "namespace: "+name+"\n")
	}
	writeFileB(b, filepath.Join(root, "clusters/bench/apps.yaml"), list.String())
	writeFileB(b, filepath.Join(root, "clusters/bench/cluster.yaml"), "labels: {env: bench}\n")
	return root
}

// BenchmarkRenderCluster renders 100 apps of 10 objects (the agent's target
// size: 100 apps, 1000 objects) per iteration.
func BenchmarkRenderCluster(b *testing.B) {
	root := benchRepo(b, 100, 10)
	spec, err := repo.LoadDir(context.Background(), root, "bench")
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(root, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range spec.Apps {
			if _, err := r.Render(context.Background(), spec, &spec.Apps[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLoadCluster loads the 100-app cluster per iteration.
func BenchmarkLoadCluster(b *testing.B) {
	root := benchRepo(b, 100, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := repo.LoadDir(context.Background(), root, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func writeFileB(b *testing.B, path, content string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
