package object

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// The label keys Outpost marks its objects with. They are part of the contract with
// users (selectors in dashboards, kubectl -l) and are not configurable; their values
// come from an Owner.
const (
	// LabelManagedBy is the standard managed-by label; its value is Owner.ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelApp names the app an object belongs to.
	LabelApp = "outpost.dev/app"
	// LabelGroup prefixes the labels and annotations that are Outpost's own
	// (outpost.dev/app, outpost.dev/inventory, outpost.dev/adopt, the ssa owner labels).
	LabelGroup = "outpost.dev"
)

// DefaultFieldManager is the server-side apply field manager Outpost applies with.
const DefaultFieldManager = "outpost"

// DefaultManagedBy is the value of LabelManagedBy on Outpost's objects.
const DefaultManagedBy = "outpost"

// Owner is who Outpost is on a cluster: the field manager it applies with and the
// value of the managed-by label on what it applies. Build it once (DefaultOwner, or
// WithDefaults on a configured value) and pass the same value to render, apply, drift
// detection and the drift watcher: drift is the set of fields this manager owns.
type Owner struct {
	// FieldManager is the server-side apply field manager; its Apply entry in an
	// object's managedFields is the set of fields Outpost owns. Default
	// DefaultFieldManager.
	FieldManager string
	// ManagedBy is the value of LabelManagedBy on every object Outpost applies and on
	// its inventories. Default DefaultManagedBy.
	ManagedBy string
}

// DefaultOwner returns the Owner every Outpost component uses unless configured.
func DefaultOwner() Owner { return Owner{}.WithDefaults() }

// WithDefaults returns the owner with its empty fields set to the defaults.
func (o Owner) WithDefaults() Owner {
	if o.FieldManager == "" {
		o.FieldManager = DefaultFieldManager
	}
	if o.ManagedBy == "" {
		o.ManagedBy = DefaultManagedBy
	}
	return o
}

// Labels returns the labels that mark an object as applied by this owner for app.
func (o Owner) Labels(app string) map[string]string {
	return map[string]string{LabelManagedBy: o.ManagedBy, LabelApp: app}
}

// SetLabels adds the ownership labels for app to u, keeping its other labels. It is
// the one place objects get them (render calls it on every rendered object).
func (o Owner) SetLabels(u *unstructured.Unstructured, app string) {
	l := u.GetLabels()
	if l == nil {
		l = make(map[string]string, 2)
	}
	l[LabelManagedBy] = o.ManagedBy
	l[LabelApp] = app
	u.SetLabels(l)
}

// Owns reports whether labels mark an object as applied by this owner for app.
func (o Owner) Owns(l map[string]string, app string) bool {
	return l[LabelManagedBy] == o.ManagedBy && l[LabelApp] == app
}

// AppOf returns the app labels mark an object as belonging to ("" when none).
func (o Owner) AppOf(l map[string]string) string { return l[LabelApp] }

// Selector selects every object this owner manages, in the label-selector syntax of
// list and watch requests.
func (o Owner) Selector() string {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: o.ManagedBy}).String()
}
