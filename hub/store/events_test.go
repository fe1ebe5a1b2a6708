package store

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestDeriveEvents(t *testing.T) {
	base := synced("web", 1, "1.0.0")
	with := func(change func(a *apiv1.AppStatus)) apiv1.AppStatus {
		a := base
		a.Generation.Sequence++
		change(&a)
		return a
	}
	failedApply := func(a *apiv1.AppStatus) {
		a.Phase = apiv1.PhaseFailed
		a.Error = &apiv1.AppError{Stage: apiv1.StageApply, Message: "is invalid", File: "apps/web/deploy.yaml", Line: 3,
			Object: &apiv1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}, Field: "spec.replicas"}
	}
	noChange := func(a *apiv1.AppStatus) {
		a.LastSyncedAt = a.LastSyncedAt.Add(time.Minute)
		a.Counts = apiv1.Counts{Desired: 3, Unchanged: 1, Skipped: 2}
	}
	observedLater := drift("web", "web", 5)
	observedLater.ObservedAt = observedLater.ObservedAt.Add(time.Minute)
	observedLater.Fields[0].Time = observedLater.ObservedAt
	corrected := drift("web", "web", 5)
	corrected.Corrected = true

	type want struct {
		typ     apiv1.EventType
		message string // substring
	}
	tests := map[string]struct {
		prev *appState
		next appState
		want []want
	}{
		"new app, synced": {
			next: appState{status: base},
			want: []want{{apiv1.EventSync, "synced 1.0.0 at 3f1c2a9b8e7d: 1 configured"}},
		},
		"re-sync that changed nothing": {
			prev: &appState{status: base},
			next: appState{status: with(noChange)},
		},
		"re-sync that configured an object": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) { a.LastSyncedAt = a.LastSyncedAt.Add(time.Minute) })},
			want: []want{{apiv1.EventSync, "1 configured"}},
		},
		"same sync reported again with a new generation": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {})},
		},
		"new version": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) { noChange(a); a.Version = "1.1.0" })},
			want: []want{{apiv1.EventSync, "synced 1.1.0 at 3f1c2a9b8e7d (was 1.0.0): no change to 3 objects"}},
		},
		"syncing": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) { a.Phase = apiv1.PhaseSyncing })},
		},
		"sync fails": {
			prev: &appState{status: base},
			next: appState{status: with(failedApply)},
			want: []want{{apiv1.EventError, "apply failed: apps/web/deploy.yaml:3: Deployment.apps/shop/web: spec.replicas: is invalid"}},
		},
		"fails the same way again": {
			prev: &appState{status: with(failedApply)},
			next: appState{status: with(func(a *apiv1.AppStatus) { failedApply(a); a.Generation.Sequence++ })},
		},
		"fails differently": {
			prev: &appState{status: with(failedApply)},
			next: appState{status: with(func(a *apiv1.AppStatus) { failedApply(a); a.Error.Message = "forbidden" })},
			want: []want{{apiv1.EventError, "forbidden"}},
		},
		"recovers": {
			prev: &appState{status: with(failedApply)},
			next: appState{status: with(noChange)},
			want: []want{{apiv1.EventSync, "recovered from Failed: no change to 3 objects"}},
		},
		"source unavailable": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {
				a.Phase = apiv1.PhaseSourceUnavailable
				a.Error = &apiv1.AppError{Stage: apiv1.StageFetch, Message: "connection refused"}
			})},
			want: []want{{apiv1.EventError, "source unavailable: connection refused"}},
		},
		"health degrades": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {
				a.Health = apiv1.Health{Status: apiv1.HealthFailed, Message: "CrashLoopBackOff",
					Object: &apiv1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}}
			})},
			want: []want{{apiv1.EventHealth, "health Current -> Failed: Deployment.apps/shop/web: CrashLoopBackOff"}},
		},
		"new app that times out": {
			next: appState{status: func() apiv1.AppStatus {
				a := base
				a.Phase = apiv1.PhaseSyncing
				a.Health.Status = apiv1.HealthTimeout
				return a
			}()},
			want: []want{{apiv1.EventHealth, "health Timeout"}},
		},
		"drift appears": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {}), drift: []apiv1.Drift{drift("web", "web", 5)}},
			want: []want{{apiv1.EventDrift, "1 object drifted: Deployment.apps/shop/web (spec.replicas by kubectl)"}},
		},
		"same drift observed later": {
			prev: &appState{status: base, drift: []apiv1.Drift{drift("web", "web", 5)}},
			next: appState{status: with(func(a *apiv1.AppStatus) {}), drift: []apiv1.Drift{observedLater}},
		},
		"drift changes value": {
			prev: &appState{status: base, drift: []apiv1.Drift{drift("web", "web", 5)}},
			next: appState{status: with(func(a *apiv1.AppStatus) {}), drift: []apiv1.Drift{drift("web", "web", 6)}},
			want: []want{{apiv1.EventDrift, "1 object drifted"}},
		},
		"drift corrected": {
			prev: &appState{status: base, drift: []apiv1.Drift{drift("web", "web", 5)}},
			next: appState{status: with(func(a *apiv1.AppStatus) {}), drift: []apiv1.Drift{corrected}},
			want: []want{{apiv1.EventDrift, "(spec.replicas by kubectl, corrected)"}},
		},
		"drift cleared": {
			prev: &appState{status: base, drift: []apiv1.Drift{drift("web", "web", 5)}},
			next: appState{status: with(func(a *apiv1.AppStatus) {})},
			want: []want{{apiv1.EventDrift, "drift cleared"}},
		},
		"object deleted": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {}), drift: []apiv1.Drift{{App: "web",
				Object: apiv1.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "cfg"}, Deleted: true, ObservedAt: t0}}},
			want: []want{{apiv1.EventDrift, "ConfigMap/shop/cfg (deleted)"}},
		},
		"removed": {
			prev: &appState{status: base, drift: []apiv1.Drift{drift("web", "web", 5)}},
			next: appState{status: with(func(a *apiv1.AppStatus) {
				a.Phase = apiv1.PhaseRemoved
				a.Counts = apiv1.Counts{Pruned: 3}
			})},
			want: []want{{apiv1.EventSync, "removed from the cluster: 3 objects pruned"}, {apiv1.EventDrift, "drift cleared"}},
		},
		"fails, degrades and drifts at once": {
			prev: &appState{status: base},
			next: appState{status: with(func(a *apiv1.AppStatus) {
				failedApply(a)
				a.Health.Status = apiv1.HealthFailed
			}), drift: []apiv1.Drift{drift("web", "web", 5)}},
			want: []want{{apiv1.EventError, "apply failed"}, {apiv1.EventHealth, "Current -> Failed"}, {apiv1.EventDrift, "drifted"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := deriveEvents(tc.prev, tc.next)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				e := got[i]
				if e.Type != w.typ || !strings.Contains(e.Message, w.message) {
					t.Errorf("event %d: %s %q, want %s containing %q", i, e.Type, e.Message, w.typ, w.message)
				}
				s := tc.next.status
				if e.App != s.App || e.Version != s.Version || e.Phase != s.Phase || e.Health != s.Health.Status || e.Drifted != len(tc.next.drift) {
					t.Errorf("event %d does not carry the app's state: %+v", i, e)
				}
			}
		})
	}
}

func TestDriftMessageIsBounded(t *testing.T) {
	var ds []apiv1.Drift
	for i := range 20 {
		d := drift("web", "web-"+strings.Repeat("x", 200)+string(rune('a'+i)), 5)
		for range 50 {
			d.Fields = append(d.Fields, apiv1.DriftField{Path: "metadata.annotations." + strings.Repeat("k", 100), Live: json.RawMessage(`"v"`), Manager: "m"})
		}
		ds = append(ds, d)
	}
	e := deriveEvents(nil, appState{status: synced("web", 1, "1"), drift: ds})
	last := e[len(e)-1]
	if last.Type != apiv1.EventDrift || len(last.Message) > apiv1.MaxMessageLen || !strings.HasPrefix(last.Message, "20 objects drifted") {
		t.Fatalf("drift event %d bytes: %.120q", len(last.Message), last.Message)
	}
}

func TestTruncate(t *testing.T) {
	tests := map[string]struct {
		in   string
		n    int
		want string
	}{
		"short":        {in: "abc", n: 5, want: "abc"},
		"exact":        {in: "abcde", n: 5, want: "abcde"},
		"cut":          {in: "abcdefgh", n: 6, want: "abc..."},
		"rune kept":    {in: "ab€defgh", n: 8, want: "ab€..."},
		"rune not cut": {in: "ab€defgh", n: 6, want: "ab..."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := truncate(tc.in, tc.n); got != tc.want {
				t.Fatalf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestSortedDrift(t *testing.T) {
	in := []apiv1.Drift{drift("web", "c", 1), drift("web", "a", 1), drift("web", "b", 1)}
	got := sortedDrift(in)
	var names []string
	for _, d := range got {
		names = append(names, d.Object.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) || in[0].Object.Name != "c" {
		t.Fatalf("sortedDrift: %v (input changed: %v)", names, in[0].Object.Name != "c")
	}
}
