package agent

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"

	"github.com/outpost-gitops/outpost/sync/drift"
)

// driftLog logs the drift of a standalone agent (no hub to report it to): one info line
// per drifted object when its drift appears or changes, and one when it is gone, never
// again for the same drift on a later cycle or resync. Values are not logged (they may
// be secret); paths and managers are.
type driftLog struct {
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]map[string][32]byte // app -> object -> digest of its drift last logged
}

func newDriftLog(log *slog.Logger) *driftLog {
	return &driftLog{log: log, seen: map[string]map[string][32]byte{}}
}

// observe logs what changed in app's drift since the last call for app. policy is
// the app's drift policy, named in the lines.
func (d *driftLog) observe(app, policy string, reports []*drift.Report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	before := d.seen[app]
	now := map[string][32]byte{}
	for _, r := range reports {
		if !r.Drifted() {
			continue
		}
		obj := r.Object.String() // as kubectl names it: Deployment.apps/ns/web
		sum := driftDigest(r)
		now[obj] = sum
		if old, ok := before[obj]; ok && old == sum {
			continue
		}
		paths := make([]string, 0, len(r.Fields))
		var managers []string
		for _, f := range r.Fields {
			paths = append(paths, f.Path)
			if f.Manager != "" && !slices.Contains(managers, f.Manager) {
				managers = append(managers, f.Manager)
			}
		}
		slices.Sort(managers)
		d.log.Info("drift detected", "app", app, "object", obj, "deleted", r.Deleted,
			"fields", paths, "managers", managers, "policy", policy)
	}
	for obj := range before {
		if _, ok := now[obj]; !ok {
			d.log.Info("drift gone", "app", app, "object", obj)
		}
	}
	if len(now) == 0 {
		delete(d.seen, app)
		return
	}
	d.seen[app] = now
}

// driftDigest identifies one object's drift: deleted, and each field's path, live
// value and manager. The observation time is left out, so a resync that sees the same
// drift again is not a change.
func driftDigest(r *drift.Report) [32]byte {
	type field struct {
		Path    string `json:"p"`
		Live    any    `json:"l"`
		Manager string `json:"m"`
	}
	fs := make([]field, len(r.Fields))
	for i, f := range r.Fields {
		fs[i] = field{f.Path, f.Live, f.Manager}
	}
	data, _ := json.Marshal(struct {
		Deleted bool    `json:"d"`
		Fields  []field `json:"f"`
	}{r.Deleted, fs})
	return sha256.Sum256(data)
}
