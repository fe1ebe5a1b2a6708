package hubapitest

import (
	"encoding/json"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Fleet revisions reported by the seeded agents.
const (
	// FleetRevision is the Git revision the seeded prod-eu apps report.
	FleetRevision = "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098"
	// FleetStagingRevision is the Git revision the seeded staging apps report.
	FleetStagingRevision = "9a8b7c6d5e4f30211203f4e5d6c7b8a9a0b1c2d3"
)

// SeedFleet fills an empty hub with a small fleet whose status covers every case a
// view must show, with times relative to the hub's clock:
//
//   - prod-eu (env=prod, region=eu): web reported 1.4.2 while 1.4.3 is desired, Synced
//     and Current, with two drifted fields on Deployment.apps/shop/web (spec.replicas
//     3 → 5 by kubectl through the scale subresource; the container image by
//     kubectl-edit); payments 2.0.0 Failed at render (apps/payments/deployment.yaml:12);
//     search 0.9.1 Synced and Current.
//   - staging (env=staging): web 1.5.0-rc.1 Syncing and InProgress; payments 2.1.0
//     Synced and Current; no search.
//
// History: web went 1.4.1 → 1.4.2 → 1.4.3 on prod-eu (by ci-bot, then ada).
func (h *Hub) SeedFleet() {
	now := h.now().UTC()
	must := func(err error) {
		if err != nil {
			panic("hubapitest: seed fleet: " + err.Error())
		}
	}
	_, err := h.Register("prod-eu", map[string]string{"env": "prod", "region": "eu"})
	must(err)
	_, err = h.Register("staging", map[string]string{"env": "staging"})
	must(err)
	for _, s := range []struct{ cluster, app, version, author string }{
		{"prod-eu", "web", "1.4.1", "ci-bot"},
		{"prod-eu", "payments", "2.0.0", "ci-bot"},
		{"prod-eu", "search", "0.9.1", "ci-bot"},
		{"prod-eu", "web", "1.4.2", "ci-bot"},
		{"prod-eu", "web", "1.4.3", "ada"},
		{"staging", "web", "1.5.0-rc.1", "ada"},
		{"staging", "payments", "2.1.0", "ci-bot"},
	} {
		_, err := h.Set(s.cluster, s.app, s.version, s.author)
		must(err)
	}

	synced := func(app, version, rev string, seq int64, ago time.Duration) apiv1.AppStatus {
		return apiv1.AppStatus{
			App: app, Generation: apiv1.Generation{Epoch: now.Add(-time.Hour).UnixMilli(), Sequence: seq},
			Version: version, Revision: rev, Phase: apiv1.PhaseSynced, Health: apiv1.Health{Status: apiv1.HealthCurrent},
			Counts:       apiv1.Counts{Desired: 5, Applied: 1, Configured: 1, Unchanged: 4},
			Durations:    apiv1.Durations{RenderMs: 12, PlanMs: 18, ApplyMs: 96, HealthMs: 1450, TotalMs: 1626},
			LastSyncedAt: now.Add(-ago),
		}
	}
	raw := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		must(err)
		return b
	}

	must(h.Report("prod-eu", synced("search", "0.9.1", FleetRevision, 3, 40*time.Minute), nil))
	failed := apiv1.AppStatus{
		App: "payments", Generation: apiv1.Generation{Epoch: now.Add(-time.Hour).UnixMilli(), Sequence: 17},
		Version: "2.0.0", Revision: FleetRevision, Phase: apiv1.PhaseFailed,
		Health: apiv1.Health{Status: apiv1.HealthUnknown}, Counts: apiv1.Counts{Desired: 3},
		Error: &apiv1.AppError{
			Stage: apiv1.StageRender, Message: "yaml: line 12: mapping values are not allowed in this context",
			File: "apps/payments/deployment.yaml", Line: 12,
		},
		Durations: apiv1.Durations{FetchMs: 41, RenderMs: 3, TotalMs: 44},
	}
	must(h.Report("prod-eu", failed, nil))
	drift := []apiv1.Drift{{
		App:    "web",
		Object: apiv1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"},
		Fields: []apiv1.DriftField{
			{
				Path: "spec.replicas", Desired: raw(3), Live: raw(5), Manager: "kubectl",
				Operation: apiv1.OperationUpdate, Subresource: "scale", Time: now.Add(-2 * time.Minute), TimeObserved: true,
			},
			{
				Path: "spec.template.spec.containers[name=web].image", Desired: raw("nginx:1.27"), Live: raw("nginx:1.28"),
				Manager: "kubectl-edit", Operation: apiv1.OperationUpdate, Time: now.Add(-3 * time.Minute),
			},
		},
		ObservedAt: now.Add(-2 * time.Minute),
	}}
	must(h.Report("prod-eu", synced("web", "1.4.2", FleetRevision, 42, 5*time.Minute), drift))

	must(h.Report("staging", synced("payments", "2.1.0", FleetStagingRevision, 8, 20*time.Minute), nil))
	syncing := synced("web", "1.5.0-rc.1", FleetStagingRevision, 9, 0)
	syncing.Phase, syncing.Health = apiv1.PhaseSyncing, apiv1.Health{Status: apiv1.HealthInProgress, Message: "Deployment shop/web: 1 of 3 replicas updated"}
	syncing.LastSyncedAt = now.Add(-26 * time.Hour)
	must(h.Report("staging", syncing, nil))
}
