package agent

import (
	"encoding/json"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/drift"
	"github.com/outpost-gitops/outpost/sync/engine"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/object"
)

// appStatus converts an engine result into the wire status of one app. fetch is the
// cycle's Git fetch time. It is a pure function.
func appStatus(ar *engine.AppResult, gen apiv1.Generation, fetch time.Duration, lastSynced time.Time) apiv1.AppStatus {
	st := apiv1.AppStatus{
		App:          ar.App,
		Generation:   gen,
		Version:      ar.Version,
		Revision:     ar.Revision,
		Phase:        phase(ar.Phase),
		Health:       appHealth(ar.Health),
		LastSyncedAt: lastSynced,
		Durations: apiv1.Durations{
			FetchMs:  fetch.Milliseconds(),
			RenderMs: ar.Durations.Render.Milliseconds(),
			ApplyMs:  ar.Durations.Apply.Milliseconds(),
			HealthMs: ar.Durations.Health.Milliseconds(),
			TotalMs:  (fetch + ar.Durations.Render + ar.Durations.Apply + ar.Durations.Health).Milliseconds(),
		},
	}
	if ar.Phase == engine.PhaseBlocked {
		st.Health = apiv1.Health{Status: apiv1.HealthUnknown, Message: truncate(ar.Message, apiv1.MaxMessageLen)}
	}
	if ar.Apply != nil {
		st.Counts, st.Changes, st.ChangesOmitted = changes(ar.Apply.Changes, len(ar.Objects))
	} else {
		st.Counts.Desired = len(ar.Objects)
	}
	if ar.Error != nil {
		st.Error = &apiv1.AppError{
			Stage:   stage(ar.Error.Stage),
			Message: truncate(ar.Error.Message, apiv1.MaxMessageLen),
			File:    truncate(ar.Error.File, apiv1.MaxPathLen),
			Line:    ar.Error.Line,
			Field:   truncate(ar.Error.Field, apiv1.MaxPathLen),
		}
	}
	return st
}

func phase(p engine.Phase) apiv1.Phase {
	switch p {
	case engine.PhaseSynced:
		return apiv1.PhaseSynced
	case engine.PhaseFailed:
		return apiv1.PhaseFailed
	case engine.PhaseRemoved:
		return apiv1.PhaseRemoved
	default:
		return apiv1.PhasePending
	}
}

func stage(s engine.Stage) apiv1.Stage {
	switch s {
	case engine.StageFetch:
		return apiv1.StageFetch
	case engine.StageRender:
		return apiv1.StageRender
	case engine.StagePrune:
		return apiv1.StagePrune
	case engine.StageHealth:
		return apiv1.StageHealth
	default:
		return apiv1.StageApply
	}
}

func appHealth(h health.AppHealth) apiv1.Health {
	out := apiv1.Health{Message: truncate(h.Message, apiv1.MaxMessageLen)}
	switch h.Status {
	case health.Current:
		out.Status = apiv1.HealthCurrent
	case health.InProgress, health.Terminating:
		out.Status = apiv1.HealthInProgress
	case health.Failed, health.NotFound:
		out.Status = apiv1.HealthFailed
	case health.Timeout:
		out.Status = apiv1.HealthTimeout
	default:
		out.Status = apiv1.HealthUnknown
	}
	if h.Failing != nil {
		ref := wireRef(h.Failing.Ref, "")
		out.Object = &ref
	}
	return out
}

// changes summarises a change set: counts for every action, and the changed objects
// (not the unchanged ones), at most apiv1.MaxChanges.
func changes(cs apply.ChangeSet, desired int) (apiv1.Counts, []apiv1.ObjectChange, int) {
	c := cs.Counts
	counts := apiv1.Counts{
		Desired: desired, Created: c.Created, Configured: c.Configured, Recreated: c.Recreated,
		Unchanged: c.Unchanged, Skipped: c.Skipped, Kept: c.Kept, Pruned: c.Deleted, Failed: c.Failed,
		Applied: c.Created + c.Configured + c.Recreated,
	}
	var out []apiv1.ObjectChange
	omitted := 0
	for _, e := range cs.Entries {
		action, ok := changeAction(e.Action)
		if !ok {
			continue
		}
		if len(out) == apiv1.MaxChanges {
			omitted++
			continue
		}
		out = append(out, apiv1.ObjectChange{Action: action, ObjectRef: wireRef(e.Ref, e.Version)})
	}
	return counts, out, omitted
}

func changeAction(a apply.Action) (apiv1.ChangeAction, bool) {
	switch a {
	case apply.ActionCreated:
		return apiv1.ActionCreated, true
	case apply.ActionConfigured:
		return apiv1.ActionConfigured, true
	case apply.ActionRecreated:
		return apiv1.ActionRecreated, true
	case apply.ActionDeleted:
		return apiv1.ActionPruned, true
	case apply.ActionDisowned:
		return apiv1.ActionDisowned, true
	case apply.ActionFailed:
		return apiv1.ActionFailed, true
	}
	return "", false
}

// driftEntries converts drift reports of app to wire entries, within the hub's limits.
func driftEntries(app string, reports []*drift.Report, corrected bool) []apiv1.Drift {
	var out []apiv1.Drift
	for _, r := range reports {
		d := apiv1.Drift{
			App:        app,
			Object:     wireRef(r.Object, r.Version),
			Deleted:    r.Deleted,
			ObservedAt: r.ObservedAt,
			Corrected:  corrected,
		}
		for i, f := range r.Fields {
			if i == apiv1.MaxDriftFields {
				break
			}
			d.Fields = append(d.Fields, apiv1.DriftField{
				Path: truncate(f.Path, apiv1.MaxPathLen), Desired: jsonValue(f.Desired), Live: jsonValue(f.Live),
				Manager: truncate(f.Manager, apiv1.MaxShortLen), Operation: f.Operation, Subresource: f.Subresource,
				Time: f.Time, TimeObserved: f.TimeObserved, Redacted: f.Redacted,
			})
		}
		out = append(out, d)
	}
	return out
}

// wireRef maps the engine's object identity, at an API version ("" when not known),
// to the wire's: the one place the two shapes meet.
func wireRef(ref object.Ref, version string) apiv1.ObjectRef {
	return apiv1.ObjectRef{Group: ref.Group, Version: version, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
}

// jsonValue encodes a field value, replacing one too large for the hub by a marker.
func jsonValue(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil || len(data) > apiv1.MaxValueBytes {
		return json.RawMessage(`"(value too large to report)"`)
	}
	return data
}

// truncate bounds s to n bytes for the hub, marking a cut with "..."; a rune split by
// the cut (or any invalid byte) is dropped, so the result is valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-len("...")], "") + "..."
}
