package httpapi

import (
	"context"
	"sync"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/store"
)

// summaryCache holds the store's cluster and app summaries for at most ttl: the list
// and the matrix read them, and each query costs hundreds of milliseconds at 10 000
// clusters. One caller refreshes at a time; the others wait for its result.
type summaryCache struct {
	st  store.Statuses
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	clusters  map[string]apiv1.ClusterSummary
	clusterAt time.Time
	apps      []store.AppSummary
	appsAt    time.Time
}

func newSummaryCache(st store.Statuses, ttl time.Duration, now func() time.Time) *summaryCache {
	return &summaryCache{st: st, ttl: ttl, now: now}
}

// clusterSummaries returns every cluster's summary, at most ttl old.
func (c *summaryCache) clusterSummaries(ctx context.Context) (map[string]apiv1.ClusterSummary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && c.clusters != nil && c.now().Sub(c.clusterAt) < c.ttl {
		return c.clusters, nil
	}
	m, err := c.st.ClusterSummaries(ctx)
	if err != nil {
		return nil, err
	}
	c.clusters, c.clusterAt = m, c.now()
	return m, nil
}

// appSummaries returns every app of every cluster, at most ttl old. The slice is
// shared: read only.
func (c *summaryCache) appSummaries(ctx context.Context) ([]store.AppSummary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && c.apps != nil && c.now().Sub(c.appsAt) < c.ttl {
		return c.apps, nil
	}
	apps, err := c.st.AppSummaries(ctx, "")
	if err != nil {
		return nil, err
	}
	if apps == nil {
		apps = []store.AppSummary{}
	}
	c.apps, c.appsAt = apps, c.now()
	return apps, nil
}

// summarize counts apps as store.ClusterSummaries does: Removed apps left out.
func summarize(phases []apiv1.Phase, healths []apiv1.HealthStatus, drifted []bool) apiv1.ClusterSummary {
	var s apiv1.ClusterSummary
	for i, p := range phases {
		if p == apiv1.PhaseRemoved {
			continue
		}
		s.Apps++
		switch p {
		case apiv1.PhaseSynced:
			s.Synced++
		case apiv1.PhaseSyncing, apiv1.PhasePending:
			s.Syncing++
		case apiv1.PhaseFailed, apiv1.PhaseSourceUnavailable:
			s.Failed++
		}
		switch healths[i] {
		case apiv1.HealthCurrent:
			s.Healthy++
		case apiv1.HealthFailed, apiv1.HealthTimeout:
			s.Unhealthy++
		}
		if drifted[i] {
			s.Drifted++
		}
	}
	return s
}

// summarizeRecords is summarize of a cluster's full records.
func summarizeRecords(recs []store.AppRecord) apiv1.ClusterSummary {
	phases := make([]apiv1.Phase, len(recs))
	healths := make([]apiv1.HealthStatus, len(recs))
	drifted := make([]bool, len(recs))
	for i, r := range recs {
		phases[i], healths[i], drifted[i] = r.Status.Phase, r.Status.Health.Status, len(r.Drift) > 0
	}
	return summarize(phases, healths, drifted)
}

// summarizeApps is summarize of a cluster's app summaries.
func summarizeApps(apps []store.AppSummary) apiv1.ClusterSummary {
	phases := make([]apiv1.Phase, len(apps))
	healths := make([]apiv1.HealthStatus, len(apps))
	drifted := make([]bool, len(apps))
	for i, a := range apps {
		phases[i], healths[i], drifted[i] = a.Phase, a.Health, a.Drifted > 0
	}
	return summarize(phases, healths, drifted)
}
