package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"k8s.io/client-go/discovery"

	"github.com/outpost-gitops/outpost/sync/chart"
)

// chartCacheDir is where downloaded Helm charts are kept, under the cache directory.
func chartCacheDir(cacheDir string) string { return filepath.Join(cacheDir, "charts") }

// newChartFetcher returns the fetcher of remote Helm charts: cached under the cache
// directory, credentials only from --chart-credentials-file, provenance verified
// with the keys of --chart-keyring as --chart-verify says.
func newChartFetcher(cfg Config, l *loop) (*chart.Fetcher, error) {
	fc := chart.FetcherConfig{
		CacheDir: chartCacheDir(cfg.CacheDir), PlainHTTPHosts: cfg.ChartPlainHTTPHosts, Logger: l.log,
		Verify: chart.VerifyPolicy(cfg.ChartVerify),
	}
	if file := cfg.ChartCredentialsFile; file != "" {
		fc.Credentials = chart.FileCredentials(file) // read at each download: a rotated Secret takes effect
	}
	if file := cfg.ChartKeyring; file != "" {
		k, err := chart.LoadKeyring(file)
		if err != nil {
			return nil, fmt.Errorf("--chart-keyring: %w", err)
		}
		fc.Keyring = k
		l.log.Info("chart provenance keyring loaded", "file", file, "keys", k.Len(), "verify", cfg.ChartVerify)
	}
	return chart.NewFetcher(fc)
}

// clusterCapabilities reads the Kubernetes version and the served API versions
// ("group/version" and "group/version/Kind") from discovery, for the .Capabilities
// of Helm charts.
func clusterCapabilities(d discovery.DiscoveryInterface) func(context.Context) (string, []string, error) {
	return func(context.Context) (string, []string, error) {
		v, err := d.ServerVersion()
		if err != nil {
			return "", nil, fmt.Errorf("server version: %w", err)
		}
		_, lists, err := d.ServerGroupsAndResources()
		if err != nil && len(lists) == 0 {
			return "", nil, fmt.Errorf("API versions: %w", err)
		}
		var out []string
		for _, l := range lists {
			out = append(out, l.GroupVersion)
			for _, r := range l.APIResources {
				out = append(out, l.GroupVersion+"/"+r.Kind)
			}
		}
		slices.Sort(out)
		return v.GitVersion, slices.Compact(out), nil
	}
}
