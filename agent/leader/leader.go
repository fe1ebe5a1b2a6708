// Package leader runs a function only while this replica holds a Kubernetes Lease, so
// exactly one agent per cluster acts and the others stand by.
//
// The model is client-go's leader election on a coordination.k8s.io Lease: the leader
// renews the Lease; a standby takes over within LeaseDuration after the leader stops
// renewing. On a clean shutdown (ctx cancelled) the Lease is released at once, so a
// standby takes over within RetryPeriod. After losing the Lease, a replica stops its
// work (the ctx given to lead is cancelled) and campaigns again; the release on its way
// out is refused when the Lease names another replica by then (ForeignReleaseError).
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Config configures leader election.
type Config struct {
	// Client talks to the cluster holding the Lease.
	Client kubernetes.Interface
	// Namespace and Name name the Lease.
	Namespace, Name string
	// Identity names this replica in the Lease; it must be unique per replica.
	Identity string
	// LeaseDuration is how long a claim lasts without renewal. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before giving up.
	// Default two thirds of LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts. Default LeaseDuration / 7.
	RetryPeriod time.Duration
	// Logger receives leadership changes. Default: discard.
	Logger *slog.Logger

	now func() time.Time // the clock of the fence; tests set it. Default time.Now.
}

func (c Config) withDefaults() Config {
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 15 * time.Second
	}
	if c.RenewDeadline <= 0 || c.RenewDeadline >= c.LeaseDuration {
		c.RenewDeadline = c.LeaseDuration * 2 / 3
	}
	if c.RetryPeriod <= 0 {
		c.RetryPeriod = c.LeaseDuration / 7
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Fence tells whether this replica may still write: nil while its last successful
// write of the Lease (acquire or renewal, timed when the request was sent) is younger
// than RenewDeadline, else a *LostError. That is LeaseDuration minus a safety margin of
// LeaseDuration − RenewDeadline (a third of the Lease by default): a standby takes the
// Lease no earlier than LeaseDuration after it saw the last renewal, and the margin
// covers clock-rate differences and a request's time on the wire.
//
// Leader election notices a lost Lease only when a renewal fails; a replica that was
// paused (SIGSTOP, a VM freeze, a long GC) beyond the Lease resumes believing it leads
// while another has taken over. The Fence reads the monotonic clock only, no request,
// and the monotonic clock runs while the process is stopped, so the first check after
// such a pause fails. Check it before every write: Transport checks it just before a
// request goes on the wire.
type Fence func() error

// LostError is a Fence that no longer holds.
type LostError struct {
	// Lease names the Lease.
	Lease string
	// Since is how long ago it was last renewed by this replica.
	Since time.Duration
	// Deadline is Config.RenewDeadline.
	Deadline time.Duration
}

func (e *LostError) Error() string {
	return fmt.Sprintf("leadership of Lease %s not renewed for %s (over %s): not writing until it is", e.Lease, e.Since.Round(time.Millisecond), e.Deadline)
}

// Run campaigns for the Lease until ctx ends, calling lead each time this replica
// becomes leader; lead's context is cancelled when leadership is lost or ctx ends, and
// Run waits for lead to return before campaigning again or releasing the Lease. lead
// gets the Fence to check before each write batch.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context, fence Fence)) error {
	cfg = cfg.withDefaults()
	lock := &renewClock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}, now: cfg.now}
	for ctx.Err() == nil {
		if err := campaign(ctx, cfg, lock, lead); err != nil {
			return err
		}
	}
	return nil
}

// campaign runs one leader election: acquire, lead, lose or shut down. The elector runs
// on its own context so that on shutdown the Lease is released only after lead has
// returned: a standby never writes while this replica is still finishing an apply.
func campaign(ctx context.Context, cfg Config, lock *renewClock, lead func(ctx context.Context, fence Fence)) error {
	electorCtx, cancelElector := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElector()
	started := make(chan struct{})
	done := make(chan struct{})
	waitLead := func() {
		select {
		case <-started:
			<-done
		default:
		}
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				close(started)
				defer close(done)
				workCtx, cancel := context.WithCancel(leadCtx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				cfg.Logger.Info("became leader", "lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
				lead(workCtx, lock.fence(cfg.Namespace+"/"+cfg.Name, cfg.RenewDeadline))
			},
			OnStoppedLeading: func() {
				cfg.Logger.Info("not leading", "lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election on Lease %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	stopWatch := context.AfterFunc(ctx, func() {
		waitLead()
		cancelElector() // releases the Lease
	})
	defer stopWatch()
	elector.Run(electorCtx) // returns when leadership is lost or the elector is cancelled
	waitLead()
	return nil
}

// renewClock is the Lease lock recording when this replica last wrote the Lease
// successfully (acquired or renewed it): the time the request was sent, so the
// fence errs on the safe side.
//
// It also keeps a release from clearing another replica's claim. client-go releases
// the Lease when a renewal fails (ReleaseOnCancel) by reading it and writing an empty
// holder over what it read, checking only its own belief that it leads, which a
// replica paused beyond its Lease still holds: its release would end the new
// leader's term and let a third claim start while that leader still writes. The
// write is conditional on the resourceVersion read, so refusing it when the record
// read names someone else is enough.
type renewClock struct {
	resourcelock.Interface
	now  func() time.Time
	mu   sync.Mutex
	last time.Time
	// read is the holder of the record last read, "" when the read failed.
	read string
}

func (r *renewClock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := r.Interface.Get(ctx)
	r.mu.Lock()
	r.read = ""
	if err == nil && rec != nil {
		r.read = rec.HolderIdentity
	}
	r.mu.Unlock()
	return rec, raw, err
}

func (r *renewClock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := r.now()
	err := r.Interface.Create(ctx, ler)
	r.mark(sent, err, ler)
	return err
}

func (r *renewClock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	if ler.HolderIdentity == "" {
		if err := r.mayRelease(); err != nil {
			return err
		}
	}
	sent := r.now()
	err := r.Interface.Update(ctx, ler)
	r.mark(sent, err, ler)
	return err
}

// mayRelease allows a release (a write of an empty holder) only over a record read
// just before that names this replica (whose identity is never empty).
func (r *renewClock) mayRelease() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read != r.Identity() {
		return &ForeignReleaseError{Lease: r.Describe(), Identity: r.Identity(), Holder: r.read}
	}
	return nil
}

// ForeignReleaseError refuses to release a Lease that another replica holds: this
// replica lost it while it could not renew (paused, partitioned) and another took it.
type ForeignReleaseError struct {
	// Lease names the Lease; Identity is this replica; Holder the one the Lease names.
	Lease, Identity, Holder string
}

func (e *ForeignReleaseError) Error() string {
	return fmt.Sprintf("not releasing Lease %s: it is held by %q, not by this replica %q", e.Lease, e.Holder, e.Identity)
}

// mark records a successful write of a record naming this replica.
func (r *renewClock) mark(sent time.Time, err error, ler resourcelock.LeaderElectionRecord) {
	if err != nil || ler.HolderIdentity != r.Identity() {
		return
	}
	r.mu.Lock()
	r.last = sent
	r.mu.Unlock()
}

func (r *renewClock) fence(lease string, deadline time.Duration) Fence {
	return func() error {
		r.mu.Lock()
		since := r.now().Sub(r.last)
		r.mu.Unlock()
		if since >= deadline {
			return &LostError{Lease: lease, Since: since, Deadline: deadline}
		}
		return nil
	}
}
