package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Defaults of Config, in one place.
const (
	// DefaultInterval is Config.Interval when unset.
	DefaultInterval = time.Second
	// DefaultLeaseTTL is Config.LeaseTTL when unset.
	DefaultLeaseTTL = 15 * time.Second
	// LeaseName is the store lease of the process that drives rollouts.
	LeaseName = "rollouts"
	// maxStepsPerTick bounds the changes one run makes in one evaluation.
	maxStepsPerTick = 8
	// maxCASRetries bounds the retries of a person's action racing the driver.
	maxCASRetries = 5
	// ancestryCacheSize bounds the remembered ancestry answers.
	ancestryCacheSize = 4096
)

// DefaultAuthor is Config.Author when unset.
var defaultAuthor = gitstore.Author{Name: "Outpost rollout", Email: "rollout@outpost.invalid"}

// Store is where runs, leases and events are kept, and where reports are read;
// *store.SQLite is one.
type Store interface {
	store.Rollouts
	// Status returns the reported status of the apps q selects.
	Status(ctx context.Context, q store.StatusQuery) ([]store.AppRecord, error)
}

// Git is the repository the runs read and write; *gitstore.Store is one.
type Git interface {
	// Snapshot returns the desired state at rev ("" for the head).
	Snapshot(ctx context.Context, rev string) (*gitstore.Snapshot, error)
	// RolloutPolicy reads rollouts/<app>.yaml at rev ("" for the head).
	RolloutPolicy(ctx context.Context, rev, app string) (*repo.RolloutPolicy, string, error)
	// SetEach writes a version per cluster in one commit.
	SetEach(ctx context.Context, req gitstore.EachRequest, author gitstore.Author) (*gitstore.EachResult, error)
	// FindCommit finds the newest commit since a revision carrying trailers.
	FindCommit(ctx context.Context, since string, want []gitstore.Trailer) (string, error)
	// IsAncestor reports whether ancestor is rev or an ancestor of it.
	IsAncestor(ctx context.Context, ancestor, rev string) (bool, error)
}

// Notifier hears of runs that need a person: paused, rolling back, rolled back,
// aborted.
type Notifier interface {
	// Notify sends what happened to run r; errors are the notifier's to log.
	Notify(ctx context.Context, r *apiv1.Rollout, what string)
}

// Config configures a Driver. Store and Git are required.
type Config struct {
	// Store keeps runs, leases and events, and has the reports.
	Store Store
	// Git is the repository.
	Git Git
	// Holder names this hub process in the lease. Default: host name, process ID
	// and a random suffix.
	Holder string
	// Interval is how often active runs are evaluated when nothing wakes the driver
	// earlier (a report, a person's action). Default DefaultInterval.
	Interval time.Duration
	// LeaseTTL is how long the lease lasts without renewal: after a hub process
	// dies, another takes over within it. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Author authors the runs' commits (the person who started a run is named in
	// its events and in the run). Default "Outpost rollout <rollout@outpost.invalid>".
	Author gitstore.Author
	// Notifier hears of runs that need a person; nil: nobody.
	Notifier Notifier
	// Changed is called after a run changed (for live dashboards); nil: nothing.
	Changed func(r *apiv1.Rollout)
	// Meter creates the driver's instruments; nil: no metrics.
	Meter metric.Meter
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Store == nil:
		return c, errors.New("rollout config: Store is required")
	case c.Git == nil:
		return c, errors.New("rollout config: Git is required")
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Author == (gitstore.Author{}) {
		c.Author = defaultAuthor
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Meter == nil {
		c.Meter = metricnoop.NewMeterProvider().Meter("outpost-hub")
	}
	return c, nil
}

// Driver starts runs, applies people's actions, and drives active runs.
type Driver struct {
	cfg         Config
	log         *slog.Logger
	wake        chan struct{}
	transitions metric.Int64Counter

	mu       sync.Mutex
	ancestry map[[2]string]bool // (ancestor, rev) -> answer
}

// New returns a driver for cfg.
func New(cfg Config) (*Driver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), ancestry: map[[2]string]bool{}}
	if d.transitions, err = cfg.Meter.Int64Counter("outpost.hub.rollout.transitions",
		metric.WithDescription("Rollout runs entering each state.")); err != nil {
		return nil, err
	}
	if _, err = cfg.Meter.Int64ObservableGauge("outpost.hub.rollouts",
		metric.WithDescription("Rollout runs by state (the newest 100)."),
		metric.WithInt64Callback(func(ctx context.Context, o metric.Int64Observer) error {
			runs, err := cfg.Store.ListRollouts(ctx, store.RolloutQuery{})
			if err != nil {
				return err
			}
			counts := map[apiv1.RolloutState]int64{}
			for _, r := range runs {
				counts[r.State]++
			}
			for _, s := range []apiv1.RolloutState{apiv1.RolloutRunning, apiv1.RolloutAwaitingApproval, apiv1.RolloutPaused,
				apiv1.RolloutRollingBack, apiv1.RolloutSucceeded, apiv1.RolloutRolledBack, apiv1.RolloutAborted} {
				o.Observe(counts[s], metric.WithAttributes(attribute.String("state", string(s))))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	return d, nil
}

// Wake makes the driver evaluate the active runs now (a report arrived).
func (d *Driver) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run drives the active runs until ctx ends, whenever this process holds the
// lease, and gives the lease up on the way out.
func (d *Driver) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	held := false
	defer func() {
		if held {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := d.cfg.Store.ReleaseLease(rctx, LeaseName, d.cfg.Holder); err != nil {
				d.log.Warn("release the rollout lease", "err", err)
			}
		}
	}()
	for {
		ok, err := d.cfg.Store.AcquireLease(ctx, LeaseName, d.cfg.Holder, d.cfg.Now(), d.cfg.LeaseTTL)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("take the rollout lease", "err", err)
		case ok != held:
			held = ok
			d.log.Info("rollout lease", "held", held, "holder", d.cfg.Holder)
		}
		if held {
			d.driveAll(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

// driveAll drives every active run once.
func (d *Driver) driveAll(ctx context.Context) {
	runs, err := d.cfg.Store.ListRollouts(ctx, store.RolloutQuery{Active: true})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("list active rollouts", "err", err)
		}
		return
	}
	for i := range runs {
		if err := d.drive(ctx, &runs[i]); err != nil && ctx.Err() == nil {
			d.log.Warn("drive rollout", "rollout", runs[i].ID, "app", runs[i].App, "err", err)
		}
	}
}

// drive writes r's pending step, or evaluates it, until nothing changes.
func (d *Driver) drive(ctx context.Context, r *apiv1.Rollout) error {
	for range maxStepsPerTick {
		if i := PendingStep(r); i >= 0 {
			// Renew the lease before a write: a process that stalled past it must
			// not write what its successor may be writing.
			ok, err := d.cfg.Store.AcquireLease(ctx, LeaseName, d.cfg.Holder, d.cfg.Now(), d.cfg.LeaseTTL)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("rollout %s: lease lost to another hub process before writing step %d", r.ID, i)
			}
			next, evs, err := d.write(ctx, r, i)
			if err != nil {
				return err
			}
			if r, err = d.save(ctx, r, next, evs); err != nil {
				return err
			}
			continue
		}
		obs, err := d.observe(ctx, r)
		if err != nil {
			return err
		}
		next, evs := Advance(r, obs, d.cfg.Now())
		if next == r {
			return nil
		}
		if i := PendingStep(next); i >= 0 && next.Steps[i].Kind == apiv1.StepForward {
			if err := d.recordPrevious(ctx, next, i); err != nil {
				return err
			}
		}
		if r, err = d.save(ctx, r, next, evs); err != nil {
			return err
		}
	}
	return nil
}

// recordPrevious stores, before a forward step is written, the version each of
// its clusters has at the head: what a rollback sets back, and what the write
// expects to find.
func (d *Driver) recordPrevious(ctx context.Context, r *apiv1.Rollout, i int) error {
	sn, err := d.cfg.Git.Snapshot(ctx, "")
	if err != nil {
		return fmt.Errorf("rollout %s: read the head: %w", r.ID, err)
	}
	for _, name := range r.Steps[i].Clusters {
		(*run)(r).cluster(name).Previous = versionIn(sn, name, r.App)
	}
	return nil
}

// write writes step i of r, or finds it already written (a hub killed after the
// commit and before recording it), and returns r with the outcome recorded.
func (d *Driver) write(ctx context.Context, r *apiv1.Rollout, i int) (*apiv1.Rollout, []apiv1.Event, error) {
	step := r.Steps[i]
	trailers := Trailers(r, i)
	targets, expect := map[string]string{}, map[string]string{}
	for _, name := range step.Clusters {
		c := (*run)(r).cluster(name)
		if step.Kind == apiv1.StepForward {
			targets[name], expect[name] = r.Version, c.Previous
		} else {
			targets[name], expect[name] = c.Previous, r.Version
		}
	}
	commit, err := d.cfg.Git.FindCommit(ctx, r.Revision, trailers[:2])
	if err != nil {
		return nil, nil, fmt.Errorf("rollout %s: look for step %d in the history: %w", r.ID, i, err)
	}
	left := map[string]string{}
	if commit != "" {
		d.log.Info("rollout step found in the history", "rollout", r.ID, "step", i, "commit", commit)
		sn, err := d.cfg.Git.Snapshot(ctx, commit)
		if err != nil {
			return nil, nil, fmt.Errorf("rollout %s: read %s: %w", r.ID, commit, err)
		}
		for name, target := range targets {
			if v := versionIn(sn, name, r.App); v != target {
				left[name] = v
			}
		}
	} else {
		res, err := d.cfg.Git.SetEach(ctx, gitstore.EachRequest{App: r.App, Targets: targets, Expect: expect,
			Subject: Subject(r, i), Trailers: trailers}, d.cfg.Author)
		if err != nil {
			if permanent(err) {
				next, evs := Unplan(r, i, err.Error(), d.cfg.Now())
				return next, evs, nil
			}
			return nil, nil, fmt.Errorf("rollout %s: write step %d: %w", r.ID, i, err)
		}
		commit = res.Revision
		for _, c := range res.Conflicts {
			left[c.Cluster] = c.Found
		}
		d.log.Info("rollout step written", "rollout", r.ID, "step", i, "commit", commit, "committed", res.Committed, "left", len(left))
	}
	next, evs := Record(r, i, commit, left, d.cfg.Now())
	return next, evs, nil
}

// permanent reports whether a write error will not go away by retrying.
func permanent(err error) bool {
	var nf *gitstore.NotFoundError
	var ve *gitstore.ValidationError
	var ce *gitstore.ContentError
	return errors.As(err, &nf) || errors.As(err, &ve) || errors.As(err, &ce)
}

// observe reads the app's reports for the run's clusters.
func (d *Driver) observe(ctx context.Context, r *apiv1.Rollout) (map[string]Observation, error) {
	recs, err := d.cfg.Store.Status(ctx, store.StatusQuery{App: r.App})
	if err != nil {
		return nil, fmt.Errorf("rollout %s: read the reports of %s: %w", r.ID, r.App, err)
	}
	byCluster := make(map[string]*store.AppRecord, len(recs))
	for i := range recs {
		byCluster[recs[i].Cluster] = &recs[i]
	}
	obs := make(map[string]Observation, len(r.Clusters))
	for _, c := range r.Clusters {
		rec := byCluster[c.Cluster]
		if rec == nil {
			continue
		}
		o := Observation{Report: &apiv1.RolloutReport{Version: rec.Status.Version, Revision: rec.Status.Revision,
			Phase: rec.Status.Phase, Health: rec.Status.Health.Status, ReceivedAt: rec.ReceivedAt}}
		if c.Step >= 0 && c.Step < len(r.Steps) && r.Steps[c.Step].Commit != "" && rec.Status.Revision != "" {
			o.AtCommit = d.isAncestor(ctx, r.Steps[c.Step].Commit, rec.Status.Revision)
		}
		obs[c.Cluster] = o
	}
	return obs, nil
}

// isAncestor answers from a bounded cache; a revision the hub does not have is
// not at the commit.
func (d *Driver) isAncestor(ctx context.Context, ancestor, rev string) bool {
	key := [2]string{ancestor, rev}
	d.mu.Lock()
	ok, known := d.ancestry[key]
	d.mu.Unlock()
	if known {
		return ok
	}
	ok, err := d.cfg.Git.IsAncestor(ctx, ancestor, rev)
	if err != nil {
		d.log.Debug("ancestry unknown", "ancestor", ancestor, "revision", rev, "err", err)
		return false
	}
	d.mu.Lock()
	if len(d.ancestry) >= ancestryCacheSize {
		clear(d.ancestry)
	}
	d.ancestry[key] = ok
	d.mu.Unlock()
	return ok
}

// save stores next over prev (compare-and-swap), records its events, and tells the
// notifier and the dashboard.
func (d *Driver) save(ctx context.Context, prev, next *apiv1.Rollout, evs []apiv1.Event) (*apiv1.Rollout, error) {
	if err := d.cfg.Store.UpdateRollout(ctx, next); err != nil {
		return nil, err
	}
	d.changed(ctx, prev, next, evs)
	return next, nil
}

// changed records the events of a stored change and tells whoever listens.
func (d *Driver) changed(ctx context.Context, prev, next *apiv1.Rollout, evs []apiv1.Event) {
	if err := d.cfg.Store.AddEvents(ctx, evs); err != nil {
		d.log.Warn("record rollout events", "rollout", next.ID, "err", err)
	}
	for _, e := range evs {
		d.log.Info("rollout", "rollout", next.ID, "app", next.App, "cluster", e.Cluster, "event", e.Message)
	}
	if prev == nil || prev.State != next.State {
		d.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String("state", string(next.State))))
		switch next.State {
		case apiv1.RolloutPaused, apiv1.RolloutRollingBack, apiv1.RolloutRolledBack, apiv1.RolloutAborted:
			if d.cfg.Notifier != nil {
				what := string(next.State)
				if next.Reason != "" {
					what += ": " + next.Reason
				}
				d.cfg.Notifier.Notify(ctx, next, what)
			}
		}
	}
	if d.cfg.Changed != nil {
		d.cfg.Changed(next)
	}
}

// Start starts a run of app at version, by a person, from the policy at the head.
// Errors: a *gitstore.NotFoundError (no policy), *gitstore.ContentError (a bad
// policy), *StartError, *store.ActiveRolloutError.
func (d *Driver) Start(ctx context.Context, app, version, by string) (*apiv1.Rollout, error) {
	p, rev, err := d.cfg.Git.RolloutPolicy(ctx, "", app)
	if err != nil {
		return nil, err
	}
	sn, err := d.cfg.Git.Snapshot(ctx, rev)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rev, err)
	}
	f := Fleet{Revision: rev, Apps: sn.Apps, Labels: map[string]map[string]string{}}
	for _, c := range sn.Clusters {
		if c.Error == "" {
			f.Labels[c.Name] = c.Labels
		}
	}
	now := d.cfg.Now()
	r, err := NewRun(newID(app, now), app, version, p, f, by, now)
	if err != nil {
		return nil, err
	}
	if err := d.cfg.Store.CreateRollout(ctx, r); err != nil {
		return nil, err
	}
	d.changed(ctx, nil, r, []apiv1.Event{{App: app, Type: apiv1.EventRollout, Time: now, Version: version,
		Message: fmt.Sprintf("rollout %s of %s=%s started by %s: %d waves, %d clusters", r.ID, app, version, by, len(r.Waves), len(r.Clusters))}})
	d.Wake()
	return r, nil
}

// Act applies a person's action to run id (an *ActionError when its state does
// not allow it; store.ErrNotFound when there is no such run).
func (d *Driver) Act(ctx context.Context, id string, action apiv1.RolloutAction, by string) (*apiv1.Rollout, error) {
	return d.update(ctx, id, func(r *apiv1.Rollout) (*apiv1.Rollout, []apiv1.Event, error) {
		return Act(r, action, by, d.cfg.Now())
	})
}

// Override records that cluster of run id was changed by a forced manual write,
// and pauses the run.
func (d *Driver) Override(ctx context.Context, id, cluster, by string) (*apiv1.Rollout, error) {
	return d.update(ctx, id, func(r *apiv1.Rollout) (*apiv1.Rollout, []apiv1.Event, error) {
		return Override(r, cluster, by, d.cfg.Now())
	})
}

// update applies fn to the stored run, retrying when the driver changed it
// meanwhile.
func (d *Driver) update(ctx context.Context, id string, fn func(*apiv1.Rollout) (*apiv1.Rollout, []apiv1.Event, error)) (*apiv1.Rollout, error) {
	for attempt := 0; ; attempt++ {
		r, err := d.cfg.Store.GetRollout(ctx, id)
		if err != nil {
			return nil, err
		}
		next, evs, err := fn(r)
		if err != nil {
			return nil, err
		}
		err = d.cfg.Store.UpdateRollout(ctx, next)
		if errors.Is(err, store.ErrStaleRollout) && attempt < maxCASRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		d.changed(ctx, r, next, evs)
		d.Wake()
		return next, nil
	}
}

// Holding returns the active run of app that holds cluster, or nil.
func (d *Driver) Holding(ctx context.Context, app, cluster string) (*apiv1.Rollout, error) {
	runs, err := d.cfg.Store.ListRollouts(ctx, store.RolloutQuery{App: app, Active: true})
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if Holds(&runs[i], cluster) {
			return &runs[i], nil
		}
	}
	return nil, nil
}

// Get returns run id (store.ErrNotFound when there is none).
func (d *Driver) Get(ctx context.Context, id string) (*apiv1.Rollout, error) {
	return d.cfg.Store.GetRollout(ctx, id)
}

// List returns the runs of app ("" for all), newest first.
func (d *Driver) List(ctx context.Context, app string, active bool, limit int) ([]apiv1.Rollout, error) {
	return d.cfg.Store.ListRollouts(ctx, store.RolloutQuery{App: app, Active: active, Limit: limit})
}

// versionIn is app's version on cluster in sn, "" when not listed.
func versionIn(sn *gitstore.Snapshot, cluster, app string) string {
	if c := sn.Cluster(cluster); c != nil {
		if a := c.App(app); a != nil {
			return a.Version
		}
	}
	return ""
}

// newID names a run: the app, the start time and a random suffix.
func newID(app string, now time.Time) string {
	return app + "-" + strconv.FormatInt(now.UTC().Unix(), 36) + randomHex(2)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
