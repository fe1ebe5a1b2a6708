package hubclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubapi"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Config configures a Client.
type Config struct {
	// HubURL is the hub's base URL: one, or several separated by commas (replicas of
	// a highly available hub). The client uses one at a time and moves to the next
	// when the one in use cannot be reached or answers 502, 503 or 504. One URL of a
	// Service in front of the replicas fails over by itself (a retry opens a new
	// connection).
	HubURL string
	// Cluster is this cluster's name.
	Cluster string
	// Agent identifies this agent in reports.
	Agent apiv1.AgentInfo
	// Token returns the cluster's agent token; called for every request.
	Token func() (string, error)
	// Logger receives delivery problems (and hubapi's retries). Default: discard.
	Logger *slog.Logger
	// RequestTimeout bounds one report request, hubapi's retries included. Default 15s.
	RequestTimeout time.Duration
	// PollTimeout bounds one long-poll; it must exceed the hub's hold time (~30s).
	// Default 60s.
	PollTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed deliveries. Defaults 500ms
	// and 30s.
	MinBackoff, MaxBackoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = 60 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	return c
}

// entry is the newest state of one app.
type entry struct {
	status apiv1.AppStatus
	drift  []apiv1.Drift
}

// Client sends reports to the hub and long-polls it for desired-state changes.
type Client struct {
	cfg Config
	// hubs are the clients of the hub URLs; cur indexes the one in use.
	hubs []*hubapi.Client
	cur  atomic.Int64

	mu      sync.Mutex
	pending map[string]entry
	wake    chan struct{}
}

// New returns a Client; it sends nothing until Run or Flush.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.Token == nil {
		return nil, errors.New("hub client: a token source is required")
	}
	urls := SplitURLs(cfg.HubURL)
	if len(urls) == 0 {
		return nil, errors.New("hub client: no hub URL")
	}
	opts := hubapi.Options{
		Logger:          cfg.Logger,
		Timeout:         cfg.RequestTimeout,
		LongPollTimeout: cfg.PollTimeout,
		UserAgent:       "outpost-agent/" + cfg.Agent.Version,
		// The answers are a revision or the list of a report's apps.
		MaxResponseBytes: 1 << 20,
		Token:            cfg.Token,
		Header: func(ctx context.Context, h http.Header) {
			telemetry.Propagator().Inject(ctx, propagation.HeaderCarrier(h))
		},
	}
	if len(urls) > 1 {
		opts.RetryMax = 1 // the next URL is the better retry
	}
	c := &Client{cfg: cfg, pending: map[string]entry{}, wake: make(chan struct{}, 1)}
	for _, u := range urls {
		hub, err := hubapi.New(u, "", opts)
		if err != nil {
			return nil, err
		}
		c.hubs = append(c.hubs, hub)
	}
	return c, nil
}

// SplitURLs splits a comma-separated list of hub URLs, dropping blanks.
func SplitURLs(list string) []string {
	var out []string
	for u := range strings.SplitSeq(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// call runs fn on the hub in use and, when that hub is down (IsFailover), on the
// next ones, once around; the first that answers stays in use.
func (c *Client) call(ctx context.Context, fn func(hub *hubapi.Client) error) error {
	start := int(c.cur.Load())
	var err error
	for k := range len(c.hubs) {
		i := (start + k) % len(c.hubs)
		if err = fn(c.hubs[i]); err == nil || !IsFailover(err) || ctx.Err() != nil {
			if k > 0 && err == nil {
				c.cur.Store(int64(i))
				c.cfg.Logger.Info("moved to another hub replica", "hub", c.hubs[i].BaseURL())
			}
			return err
		}
		if len(c.hubs) > 1 {
			c.cfg.Logger.Warn("hub replica unavailable; trying the next", "hub", c.hubs[i].BaseURL(), "err", err)
		}
	}
	return err
}

// IsFailover tells whether err says the hub in use is down, so that another replica
// may answer: unreachable, or a 502, 503 or 504 answer (a proxy with no backend, a
// hub shutting down).
func IsFailover(err error) bool {
	var un *hubapi.UnreachableError
	if errors.As(err, &un) {
		return true
	}
	var e *hubapi.APIError
	return errors.As(err, &e) && (e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout)
}

// Put queues the newest state of an app: its status and its complete current drift.
// A state older than the one already queued (by Generation) is ignored.
func (c *Client) Put(status apiv1.AppStatus, drift []apiv1.Drift) {
	c.mu.Lock()
	if old, ok := c.pending[status.App]; ok && status.Generation.Compare(old.status.Generation) < 0 {
		c.mu.Unlock()
		return
	}
	c.pending[status.App] = entry{status: status, drift: drift}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Len is the number of apps whose newest state the hub has not accepted yet.
func (c *Client) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Run delivers queued states until ctx ends, backing off while the hub is unreachable.
func (c *Client) Run(ctx context.Context) {
	backoff := c.cfg.MinBackoff
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for c.Len() > 0 && ctx.Err() == nil {
			err := c.sendBatch(ctx)
			if err == nil {
				if failing {
					c.cfg.Logger.Info("hub reachable again; reports delivered")
				}
				failing, backoff = false, c.cfg.MinBackoff
				continue
			}
			if !failing {
				c.cfg.Logger.Warn("hub unreachable; keeping the newest state of each app until it returns", "err", err, "pending", c.Len())
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
		}
	}
}

// Flush tries to deliver everything queued once, within ctx (used at shutdown).
func (c *Client) Flush(ctx context.Context) error {
	for c.Len() > 0 {
		if err := c.sendBatch(ctx); err != nil {
			return fmt.Errorf("flushing %d app states to the hub: %w", c.Len(), err)
		}
	}
	return nil
}

// batch takes a consistent snapshot of up to the hub's limits, sorted by app.
func (c *Client) batch() []entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	apps := make([]string, 0, len(c.pending))
	for app := range c.pending {
		apps = append(apps, app)
	}
	slices.Sort(apps)
	var out []entry
	drift := 0
	for _, app := range apps {
		e := c.pending[app]
		if len(out) > 0 && (len(out) >= apiv1.MaxApps || drift+len(e.drift) > apiv1.MaxDriftEntries) {
			break
		}
		out = append(out, e)
		drift += len(e.drift)
	}
	return out
}

// sendBatch sends one report; on acceptance it drops the entries that were sent
// unless a newer state was queued meanwhile.
func (c *Client) sendBatch(ctx context.Context) error {
	entries := c.batch()
	if len(entries) == 0 {
		return nil
	}
	rep := apiv1.StatusReport{Cluster: c.cfg.Cluster, Agent: c.cfg.Agent, SentAt: time.Now().UTC()}
	for _, e := range entries {
		rep.Apps = append(rep.Apps, e.status)
		rep.Drift = append(rep.Drift, e.drift...)
	}
	err := c.call(ctx, func(hub *hubapi.Client) error {
		_, err := hub.Report(ctx, &rep)
		return err
	})
	rejected := hubapi.IsRejected(err)
	if err != nil && !rejected {
		// Unreachable, 429, 5xx, an auth failure (the token may be rotated) or a local
		// error: keep the states for the next attempt.
		return err
	}
	if rejected {
		// The hub will never accept this batch as it is: retrying cannot help.
		c.cfg.Logger.Error("hub rejected a report; dropping it", "err", err, "apps", len(entries))
	}
	c.mu.Lock()
	for _, e := range entries {
		if cur, ok := c.pending[e.status.App]; ok && cur.status.Generation.Compare(e.status.Generation) == 0 {
			delete(c.pending, e.status.App)
		}
	}
	c.mu.Unlock()
	return nil
}

// WaitDesired long-polls the hub: it returns when the cluster's desired state changed
// after since (Changed true), or when the hub's hold time ends (Changed false).
func (c *Client) WaitDesired(ctx context.Context, since string) (apiv1.DesiredRevision, error) {
	var d *apiv1.DesiredRevision
	err := c.call(ctx, func(hub *hubapi.Client) error {
		var err error
		d, err = hub.Desired(ctx, c.cfg.Cluster, since)
		return err
	})
	if err != nil {
		return apiv1.DesiredRevision{}, err
	}
	return *d, nil
}
