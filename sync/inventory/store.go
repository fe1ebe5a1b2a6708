package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"
)

const (
	// DefaultNamespace is the namespace holding the inventories.
	DefaultNamespace = "outpost-system"
	// NamePrefix prefixes the app name to form the inventory ConfigMap's name.
	NamePrefix = "outpost-inv-"
	// LabelInventory marks inventory ConfigMaps; its value is the app's name. It is
	// deliberately not object.LabelApp: an inventory is not one of the app's objects.
	LabelInventory = "outpost.dev/inventory"
	// dataKey is the ConfigMap key holding the JSON-encoded inventory.
	dataKey = "inventory.json"
	// maxDataBytes keeps the ConfigMap safely under the 1 MiB object size limit.
	maxDataBytes = 900 << 10
)

// ConflictError reports that the stored inventory changed since it was loaded,
// typically because two agents synced the same app.
type ConflictError struct {
	// App is the app whose inventory changed.
	App string
	// Err is the apiserver's error.
	Err error
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("inventory of app %q changed since it was read: %v", e.App, e.Err)
}

// Unwrap returns the apiserver's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// StoreOptions configure a Store.
type StoreOptions struct {
	// Namespace holds the inventory ConfigMaps; created when missing. Default
	// DefaultNamespace.
	Namespace string
	// Logger receives debug logs; default discards.
	Logger *slog.Logger
	// Owner gives the managed-by label value of the inventory ConfigMaps. Default
	// object.DefaultOwner().
	Owner object.Owner
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Owner = o.Owner.WithDefaults()
	return o
}

// Store keeps inventories as ConfigMaps in the cluster they describe.
type Store struct {
	c    client.Client
	opts StoreOptions
}

// NewStore returns a Store that reads and writes through c.
func NewStore(c client.Client, opts StoreOptions) *Store {
	return &Store{c: c, opts: opts.withDefaults()}
}

// ConfigMapName returns the name of the ConfigMap holding app's inventory.
func ConfigMapName(app string) string { return NamePrefix + app }

func validateApp(app string) error {
	if errs := validation.IsDNS1123Subdomain(ConfigMapName(app)); len(errs) > 0 || app == "" {
		return fmt.Errorf("invalid app name %q for an inventory: %v", app, errs)
	}
	return nil
}

// Load reads app's inventory; an app never stored has an empty inventory.
func (s *Store) Load(ctx context.Context, app string) (*Inventory, error) {
	if err := validateApp(app); err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: s.opts.Namespace, Name: ConfigMapName(app)}
	if err := s.c.Get(ctx, key, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return &Inventory{App: app}, nil
		}
		return nil, fmt.Errorf("read inventory ConfigMap %s of app %q: %w", key, app, err)
	}
	inv := &Inventory{}
	if err := json.Unmarshal([]byte(cm.Data[dataKey]), inv); err != nil {
		return nil, fmt.Errorf("decode inventory ConfigMap %s key %s: %w", key, dataKey, err)
	}
	if inv.App != app {
		return nil, fmt.Errorf("inventory ConfigMap %s holds app %q, want %q", key, inv.App, app)
	}
	inv.Entries = Normalize(inv.Entries)
	inv.resourceVersion = cm.ResourceVersion
	return inv, nil
}

// Save writes inv, failing with a *ConflictError when the stored inventory changed
// since inv was loaded. On success inv remembers the new stored version, so it can
// be saved again. The namespace is created when missing.
func (s *Store) Save(ctx context.Context, inv *Inventory) error {
	if err := validateApp(inv.App); err != nil {
		return err
	}
	data, err := json.Marshal(&Inventory{App: inv.App, Entries: Normalize(inv.Entries)})
	if err != nil {
		return fmt.Errorf("encode inventory of app %q: %w", inv.App, err)
	}
	if len(data) > maxDataBytes {
		return fmt.Errorf("inventory of app %q has %d entries, %d bytes: over the %d-byte limit of a ConfigMap",
			inv.App, len(inv.Entries), len(data), maxDataBytes)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       s.opts.Namespace,
			Name:            ConfigMapName(inv.App),
			ResourceVersion: inv.resourceVersion,
			Labels:          map[string]string{object.LabelManagedBy: s.opts.Owner.ManagedBy, LabelInventory: inv.App},
		},
		Data: map[string]string{dataKey: string(data)},
	}
	if inv.resourceVersion == "" {
		err = s.create(ctx, cm)
	} else {
		err = s.c.Update(ctx, cm)
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return &ConflictError{App: inv.App, Err: err}
	case err != nil:
		return fmt.Errorf("write inventory ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	s.opts.Logger.DebugContext(ctx, "inventory saved", "app", inv.App, "entries", len(inv.Entries),
		"resourceVersion", cm.ResourceVersion)
	inv.resourceVersion = cm.ResourceVersion
	return nil
}

// create creates cm, and its namespace when the apiserver reports it missing.
func (s *Store) create(ctx context.Context, cm *corev1.ConfigMap) error {
	err := s.c.Create(ctx, cm)
	if !apierrors.IsNotFound(err) {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   cm.Namespace,
		Labels: map[string]string{object.LabelManagedBy: s.opts.Owner.ManagedBy},
	}}
	if err := s.c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create inventory namespace %s: %w", cm.Namespace, err)
	}
	return s.c.Create(ctx, cm)
}

// Delete removes app's inventory; deleting a missing inventory is not an error.
func (s *Store) Delete(ctx context.Context, app string) error {
	if err := validateApp(app); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.opts.Namespace, Name: ConfigMapName(app)}}
	if err := s.c.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete inventory ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}

// Apps lists the apps that have an inventory, sorted. An app that left the cluster's
// desired state still has one until its objects are pruned and Delete is called.
func (s *Store) Apps(ctx context.Context) ([]string, error) {
	var list corev1.ConfigMapList
	if err := s.c.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.HasLabels{LabelInventory}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list inventories in %s: %w", s.opts.Namespace, err)
	}
	apps := make([]string, 0, len(list.Items))
	for _, cm := range list.Items {
		if app := cm.Labels[LabelInventory]; app != "" && cm.Name == ConfigMapName(app) {
			apps = append(apps, app)
		}
	}
	slices.Sort(apps)
	return apps, nil
}
