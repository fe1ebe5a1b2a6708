package apply

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/plan"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// InventoryStore persists app inventories; *inventory.Store keeps them in the cluster.
type InventoryStore interface {
	// Load reads app's inventory; a missing one is empty.
	Load(ctx context.Context, app string) (*inventory.Inventory, error)
	// Save writes inv, failing if it changed since it was loaded.
	Save(ctx context.Context, inv *inventory.Inventory) error
}

// Step names a point of SyncApp between two writes.
type Step string

// SyncApp steps, in order.
const (
	// StepUnionSaved: the inventory holds stored ∪ desired; nothing applied yet.
	StepUnionSaved Step = "union-saved"
	// StepApplied: objects applied; nothing pruned, inventory records not updated.
	StepApplied Step = "applied"
	// StepPruned: prune done (or skipped); the inventory is not yet shrunk.
	StepPruned Step = "pruned"
)

// Interrupter is consulted by SyncApp after each Step. Tests use it to stop a sync
// there as if the agent were killed.
type Interrupter interface {
	// Interrupt returns nil to go on; an error ends SyncApp at once, with no
	// further request.
	Interrupt(ctx context.Context, app string, step Step) error
}

// InterruptFunc adapts a function to Interrupter.
type InterruptFunc func(ctx context.Context, app string, step Step) error

// Interrupt calls f.
func (f InterruptFunc) Interrupt(ctx context.Context, app string, step Step) error {
	return f(ctx, app, step)
}

// Config configures a Syncer; it is shared by every app of a cluster.
type Config struct {
	// Client talks to the cluster; required. Its RESTMapper must discover kinds
	// created during a sync (the default one of client.New does).
	Client client.Client
	// Logger receives one Info line per sync and Debug lines per object; default
	// discards.
	Logger *slog.Logger
	// Owner is the field manager Outpost applies with and the ownership labels every
	// desired object must carry (render sets them) and prune checks before deleting;
	// default object.DefaultOwner(). Pass the same Owner to drift detection.
	Owner object.Owner
	// Store persists inventories; default inventory.NewStore(Client) in namespace
	// outpost-system.
	Store InventoryStore
	// Lister reports live resourceVersions; default NewAPILister(Client): one LIST
	// per kind and namespace. The agent may pass its informer cache instead.
	Lister LiveLister
	// Concurrency bounds the objects applied, or deleted, at once; default 16.
	Concurrency int
	// WaitInterval is the polling period while waiting for CRDs to be Established
	// and for recreated objects to be gone (a GET per object per period); default
	// 50ms: a new CRD is typically Established within tens of milliseconds.
	WaitInterval time.Duration
	// WaitTimeout bounds each such wait; default 60s.
	WaitTimeout time.Duration
	// MaskKey keys the masks of secret values in diffs (see plan.Mask); default:
	// random per Syncer.
	MaskKey []byte
	// Interrupter, when set, is consulted between the steps of SyncApp.
	Interrupter Interrupter
	// Fence, when set, is checked before every write batch (each inventory save,
	// each stage of the apply, each stage of the prune) and again before each
	// object's apply or delete: an error stops the sync there, with no further write. The agent passes its leader election's fence, so
	// a replica paused beyond its Lease never writes after it resumes.
	Fence func() error
	// Tracer records plan, apply and prune spans; default: no tracing.
	Tracer trace.Tracer
}

// withDefaults fills the zero fields of cfg; every default lives here.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Client == nil {
		return cfg, errors.New("apply: Config.Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Owner = cfg.Owner.WithDefaults()
	if cfg.Store == nil {
		cfg.Store = inventory.NewStore(cfg.Client, inventory.StoreOptions{Logger: cfg.Logger, Owner: cfg.Owner})
	}
	if cfg.Lister == nil {
		cfg.Lister = NewAPILister(cfg.Client, cfg.Owner)
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 16
	}
	if cfg.WaitInterval <= 0 {
		cfg.WaitInterval = 50 * time.Millisecond
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("outpost")
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 60 * time.Second
	}
	return cfg, nil
}

// Options are one app's sync settings (from its app.yaml).
type Options struct {
	// Force recreates (deletes, then creates) an object whose change hits an
	// immutable field. Without it such an object fails with ObjectError.Immutable.
	Force bool
	// AllowEmpty lets a sync prune the app down to zero objects; without it an
	// empty desired set over a non-empty inventory is refused (PruneRefusedError).
	AllowEmpty bool
	// DisablePrune keeps objects that left the desired set; they stay in the
	// inventory and are pruned once prune is enabled again.
	DisablePrune bool
	// Adopt lets the app take over existing objects that Outpost does not manage (no
	// ownership label). Without it such an object is an *OwnershipError, as is, always,
	// an object another app owns. An object can opt in alone with the annotation
	// AdoptAnnotation: "true" in Git.
	Adopt bool
	// KeepDrift leaves alone what others changed (app.yaml drift: report): an object
	// whose desired state is what the inventory recorded applying is written again only
	// to undo changes made under Outpost's own field manager (a stale write of a former
	// leader); fields another manager took, and an object someone deleted, are kept
	// (ActionKept) and left to drift detection to report. Objects whose desired state
	// changed are applied as usual, taking their fields back.
	KeepDrift bool
}

// OptionsFor returns the sync options an app's app.yaml sets: the one mapping of
// app.yaml to apply.Options, for the engine's syncs and for previews.
func OptionsFor(c repo.AppConfig) Options {
	return Options{
		Force: c.Force, AllowEmpty: c.AllowEmpty, DisablePrune: !c.Prune,
		Adopt: c.Adopt, KeepDrift: c.Drift == repo.DriftReport,
	}
}

// AdoptAnnotation on a desired object lets the app adopt that object when it exists
// and Outpost does not manage it.
const AdoptAnnotation = "outpost.dev/adopt"

// Syncer applies apps to one cluster and prunes what left them.
type Syncer struct {
	cfg    Config
	differ *plan.Differ
	rm     *ssa.ResourceManager
}

// New returns a Syncer.
func New(cfg Config) (*Syncer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	differ, err := plan.NewDiffer(cfg.Client, plan.DifferOptions{
		FieldManager: cfg.Owner.FieldManager, MaskKey: cfg.MaskKey, Concurrency: cfg.Concurrency,
	})
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(cfg.Client, cfg.Client.RESTMapper(), polling.Options{})
	rm := ssa.NewResourceManager(cfg.Client, poller, ssa.Owner{Field: cfg.Owner.FieldManager, Group: object.LabelGroup})
	rm.SetConcurrency(cfg.Concurrency)
	return &Syncer{cfg: cfg, differ: differ, rm: rm}, nil
}
