package inventory

import (
	"slices"

	"github.com/outpost-gitops/outpost/sync/object"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Record describes the last successful apply of an object.
type Record struct {
	// Hash is the hash of the object exactly as it was applied (see package plan).
	Hash string `json:"hash,omitempty"`
	// ResourceVersion is the object's resourceVersion right after that apply.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// IsZero reports whether the record is empty: the object's apply is unconfirmed.
func (r Record) IsZero() bool { return r.Hash == "" && r.ResourceVersion == "" }

// Entry is one object of an app's inventory.
type Entry struct {
	object.Ref
	// Version is the API version the object was (or is about to be) applied with.
	Version string `json:"version"`
	Record
}

// EntryOf returns the entry of an object, with an empty record.
func EntryOf(u *unstructured.Unstructured) Entry {
	return Entry{Ref: object.RefOf(u), Version: u.GroupVersionKind().Version}
}

// Inventory is the set of objects Outpost applied for one app.
type Inventory struct {
	// App is the app's name.
	App string `json:"app"`
	// Entries are sorted by Ref and unique per Ref.
	Entries []Entry `json:"entries"`

	// resourceVersion is the version of the stored ConfigMap this inventory was read
	// from, used for optimistic concurrency; empty when it was never stored.
	resourceVersion string
}

// Index returns the entries keyed by Ref.
func (inv *Inventory) Index() map[object.Ref]Entry {
	m := make(map[object.Ref]Entry, len(inv.Entries))
	for _, e := range inv.Entries {
		m[e.Ref] = e
	}
	return m
}

// WithEntries returns a copy of the inventory holding entries (sorted and
// deduplicated; a later entry wins) and the same stored version.
func (inv *Inventory) WithEntries(entries []Entry) *Inventory {
	return &Inventory{App: inv.App, Entries: Normalize(entries), resourceVersion: inv.resourceVersion}
}

// Normalize returns the entries sorted by Ref with duplicates removed; of two
// entries with the same Ref the later one is kept.
func Normalize(entries []Entry) []Entry {
	byRef := make(map[object.Ref]Entry, len(entries))
	for _, e := range entries {
		byRef[e.Ref] = e
	}
	out := make([]Entry, 0, len(byRef))
	for _, e := range byRef {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Ref.Compare(b.Ref) })
	return out
}

// Union returns stored ∪ desired: every stored entry, plus every desired entry not
// yet stored. For an object in both, the stored record is kept (it still describes
// the last confirmed apply) and the desired version is taken.
func Union(stored, desired []Entry) []Entry {
	out := slices.Clone(stored)
	idx := make(map[object.Ref]int, len(stored))
	for i, e := range out {
		idx[e.Ref] = i
	}
	for _, d := range desired {
		if i, ok := idx[d.Ref]; ok {
			out[i].Version = d.Version
			continue
		}
		out = append(out, Entry{Ref: d.Ref, Version: d.Version})
	}
	return Normalize(out)
}

// Stale returns the stored entries whose object is no longer desired: the
// candidates for prune.
func Stale(stored []Entry, desired []object.Ref) []Entry {
	want := make(map[object.Ref]bool, len(desired))
	for _, r := range desired {
		want[r] = true
	}
	var out []Entry
	for _, e := range stored {
		if !want[e.Ref] {
			out = append(out, e)
		}
	}
	return out
}

// Equal reports whether two entry lists hold the same entries in the same order.
func Equal(a, b []Entry) bool { return slices.Equal(a, b) }
