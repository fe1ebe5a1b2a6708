package chartrepotest

import (
	"strings"
	"testing"

	"github.com/outpost-gitops/outpost/sync/chart"
)

// TestRepoServesPublishedVersions: the agent's fetcher finds a published version in
// the index, downloads and loads its archive (Chart.yaml names the version), and each
// download is counted; a version not yet published is not in the index.
func TestRepoServesPublishedVersions(t *testing.T) {
	r := New("web", func(v string) map[string]string {
		return map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: \"" + v + "\"}\n"}
	})
	t.Cleanup(r.Close)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := r.Publish(v); err != nil {
			t.Fatal(err)
		}
	}
	f, err := chart.NewFetcher(chart.FetcherConfig{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.Fetch(t.Context(), chart.Ref{Repo: r.URL, Chart: "web", Version: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := chart.LoadArchive(data, chart.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Version != "1.1.0" || len(c.Templates) != 1 || !strings.Contains(string(c.Templates[0].Data), `v: "1.1.0"`) {
		t.Errorf("chart %s %s, templates %v", c.Name(), c.Metadata.Version, c.Templates)
	}
	if n, m := r.Downloads("1.1.0"), r.Downloads("1.0.0"); n != 1 || m != 0 {
		t.Errorf("downloads 1.1.0 = %d, 1.0.0 = %d; want 1 and 0", n, m)
	}
	_, err = f.Fetch(t.Context(), chart.Ref{Repo: r.URL, Chart: "web", Version: "2.0.0"})
	if err == nil || !strings.Contains(err.Error(), "no version 2.0.0") {
		t.Errorf("unpublished version: err = %v", err)
	}
}
