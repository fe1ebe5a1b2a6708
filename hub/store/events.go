package store

import (
	"fmt"
	"slices"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// appState is an app's status with its drift, as stored or as reported.
type appState struct {
	status apiv1.AppStatus
	drift  []apiv1.Drift
}

// deriveEvents returns the events of an app's move from prev (nil when the hub knew
// nothing of the app) to next, in the order sync, error, health, drift. The caller
// sets Cluster, Time and ID.
//
//   - sync: next is Synced after a new successful sync (LastSyncedAt moved, or the app is
//     new) that created, configured, recreated or pruned objects, changed the version,
//     or ended a failure; or next is Removed and prev was not. A periodic re-sync that
//     changed nothing makes no event.
//   - error: next is Failed or SourceUnavailable and prev was not in that phase or
//     failed with another error.
//   - health: the health status changed (or a new app is Failed or Timeout).
//   - drift: the set of drifted objects and fields changed (observation times aside),
//     including drift cleared.
func deriveEvents(prev *appState, next appState) []apiv1.Event {
	var out []apiv1.Event
	s := next.status
	base := apiv1.Event{App: s.App, Revision: s.Revision, Version: s.Version, Phase: s.Phase, Health: s.Health.Status, Drifted: len(next.drift)}
	add := func(t apiv1.EventType, msg string) {
		e := base
		e.Type = t
		e.Message = truncate(msg, apiv1.MaxMessageLen)
		if t == apiv1.EventSync {
			e.DurationMs = s.Durations.TotalMs
		}
		out = append(out, e)
	}
	var p *apiv1.AppStatus
	if prev != nil {
		p = &prev.status
	}
	if msg, ok := syncEvent(p, &s); ok {
		add(apiv1.EventSync, msg)
	}
	if failed(s.Phase) && (p == nil || p.Phase != s.Phase || errorMessage(p) != errorMessage(&s)) {
		add(apiv1.EventError, errorMessage(&s))
	}
	switch {
	case p == nil && (s.Health.Status == apiv1.HealthFailed || s.Health.Status == apiv1.HealthTimeout):
		add(apiv1.EventHealth, healthMessage("", s.Health))
	case p != nil && p.Health.Status != s.Health.Status && s.Phase != apiv1.PhaseRemoved:
		add(apiv1.EventHealth, healthMessage(p.Health.Status, s.Health))
	}
	var prevDrift []apiv1.Drift
	if prev != nil {
		prevDrift = prev.drift
	}
	if driftSignature(prevDrift) != driftSignature(next.drift) {
		add(apiv1.EventDrift, driftMessage(next.drift))
	}
	return out
}

// syncEvent returns the message of a sync event from p to s, if there is one.
func syncEvent(p, s *apiv1.AppStatus) (string, bool) {
	if s.Phase == apiv1.PhaseRemoved {
		if p != nil && p.Phase == apiv1.PhaseRemoved {
			return "", false
		}
		return fmt.Sprintf("removed from the cluster: %d objects pruned", s.Counts.Pruned), true
	}
	if s.Phase != apiv1.PhaseSynced {
		return "", false
	}
	newSync := p == nil || !p.LastSyncedAt.Equal(s.LastSyncedAt) || p.Phase != apiv1.PhaseSynced && p.Phase != apiv1.PhaseSyncing
	if !newSync {
		return "", false
	}
	c := s.Counts
	changed := c.Created+c.Configured+c.Recreated+c.Pruned > 0
	recovered := p != nil && (failed(p.Phase) || p.Phase == apiv1.PhaseRemoved)
	if p != nil && !changed && !recovered && p.Version == s.Version {
		return "", false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "synced %s", orDash(s.Version))
	if s.Revision != "" {
		fmt.Fprintf(&b, " at %s", shortRev(s.Revision))
	}
	if p != nil && p.Version != s.Version && p.Version != "" {
		fmt.Fprintf(&b, " (was %s)", p.Version)
	}
	if recovered {
		fmt.Fprintf(&b, ", recovered from %s", p.Phase)
	}
	b.WriteString(": ")
	b.WriteString(countsMessage(c))
	return b.String(), true
}

// countsMessage formats the non-zero write counts, e.g. "1 created, 2 configured".
func countsMessage(c apiv1.Counts) string {
	var parts []string
	for _, n := range []struct {
		v    int
		name string
	}{{c.Created, "created"}, {c.Configured, "configured"}, {c.Recreated, "recreated"}, {c.Pruned, "pruned"}, {c.Failed, "failed"}} {
		if n.v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.v, n.name))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("no change to %d objects", c.Desired)
	}
	return strings.Join(parts, ", ")
}

func failed(p apiv1.Phase) bool {
	return p == apiv1.PhaseFailed || p == apiv1.PhaseSourceUnavailable
}

// errorMessage formats the app's error: "apply failed: file:line: object: field: message".
func errorMessage(s *apiv1.AppStatus) string {
	e := s.Error
	if e == nil {
		return string(s.Phase)
	}
	var b strings.Builder
	if s.Phase == apiv1.PhaseSourceUnavailable {
		b.WriteString("source unavailable: ")
	} else {
		fmt.Fprintf(&b, "%s failed: ", e.Stage)
	}
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Object != nil {
		b.WriteString(e.Object.String())
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

func healthMessage(from apiv1.HealthStatus, h apiv1.Health) string {
	msg := "health " + string(h.Status)
	if from != "" {
		msg = fmt.Sprintf("health %s -> %s", from, h.Status)
	}
	if h.Object != nil {
		msg += ": " + h.Object.String()
	}
	if h.Message != "" {
		msg += ": " + h.Message
	}
	return msg
}

// driftSignature is a canonical text of a drift set that leaves out when it was
// observed, so re-observing the same drift is no change.
func driftSignature(ds []apiv1.Drift) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s|%t|%t\n", objectKey(d.Object), d.Deleted, d.Corrected)
		for _, f := range d.Fields {
			fmt.Fprintf(&b, "\t%s|%s|%s|%s|%s|%s", f.Path, f.Desired, f.Live, f.Manager, f.Operation, f.Subresource)
			if !f.TimeObserved {
				b.WriteString("|" + f.Time.UTC().String())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// driftMessage summarises a drift set: "2 objects drifted: Deployment.apps/shop/web
// (spec.replicas by kubectl), ..."; "drift cleared" when empty.
func driftMessage(ds []apiv1.Drift) string {
	if len(ds) == 0 {
		return "drift cleared"
	}
	var b strings.Builder
	noun := "objects"
	if len(ds) == 1 {
		noun = "object"
	}
	fmt.Fprintf(&b, "%d %s drifted: ", len(ds), noun)
	for i, d := range ds {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 5 {
			fmt.Fprintf(&b, "and %d more", len(ds)-i)
			break
		}
		b.WriteString(d.Object.String())
		var fields []string
		if d.Deleted {
			fields = append(fields, "deleted")
		}
		for _, f := range d.Fields {
			if f.Manager != "" {
				fields = append(fields, f.Path+" by "+f.Manager)
			} else {
				fields = append(fields, f.Path+" removed")
			}
		}
		if d.Corrected {
			fields = append(fields, "corrected")
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(fields, ", "))
	}
	return b.String()
}

// objectKey identifies an object within an app's drift (the API version aside).
func objectKey(r apiv1.ObjectRef) string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// sortedDrift returns a copy of ds sorted by object key.
func sortedDrift(ds []apiv1.Drift) []apiv1.Drift {
	out := slices.Clone(ds)
	slices.SortFunc(out, func(a, b apiv1.Drift) int { return strings.Compare(objectKey(a.Object), objectKey(b.Object)) })
	return out
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}
