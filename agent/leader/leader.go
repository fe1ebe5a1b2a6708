// Package leader runs a function only while this replica holds a Kubernetes Lease, so
// exactly one agent per cluster acts and the others stand by.
//
// The model is client-go's leader election on a coordination.k8s.io Lease: the leader
// renews the Lease; a standby takes over within LeaseDuration after the leader stops
// renewing. On a clean shutdown (ctx cancelled) the Lease is released at once, so a
// standby takes over within RetryPeriod. After losing the Lease, a replica stops its
// work (the ctx given to lead is cancelled) and campaigns again.
package leader

import (
	"context"
	"fmt"
	"log/slog"
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Run campaigns for the Lease until ctx ends, calling lead each time this replica
// becomes leader; lead's context is cancelled when leadership is lost or ctx ends, and
// Run waits for lead to return before campaigning again or releasing the Lease.
func Run(ctx context.Context, cfg Config, lead func(ctx context.Context)) error {
	cfg = cfg.withDefaults()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
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
func campaign(ctx context.Context, cfg Config, lock resourcelock.Interface, lead func(ctx context.Context)) error {
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
				lead(workCtx)
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
