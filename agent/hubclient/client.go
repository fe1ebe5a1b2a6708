package hubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/propagation"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/telemetry"
)

// Config configures a Client.
type Config struct {
	// HubURL is the hub's base URL.
	HubURL string
	// Cluster is this cluster's name.
	Cluster string
	// Agent identifies this agent in reports.
	Agent apiv1.AgentInfo
	// Token returns the cluster's agent token; called for every request.
	Token func() (string, error)
	// Logger receives delivery problems (and retryablehttp's retries). Default: discard.
	Logger *slog.Logger
	// RequestTimeout bounds one report request. Default 15s.
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
	cfg    Config
	base   *url.URL
	report *retryablehttp.Client
	poll   *http.Client
	// prop puts the trace context on every request (the hub's format).
	prop propagation.TextMapPropagator

	mu      sync.Mutex
	pending map[string]entry
	wake    chan struct{}
}

// New returns a Client; it sends nothing until Run or Flush.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	base, err := url.Parse(strings.TrimSuffix(cfg.HubURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("hub URL %q is not a URL", cfg.HubURL)
	}
	if cfg.Token == nil {
		return nil, errors.New("hub client: a token source is required")
	}
	rc := retryablehttp.NewClient()
	rc.Logger = cfg.Logger // it logs to stderr unless told otherwise
	rc.RetryMax = 2
	rc.RetryWaitMin = 200 * time.Millisecond
	rc.RetryWaitMax = 2 * time.Second
	rc.HTTPClient.Timeout = cfg.RequestTimeout
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{
		prop:    telemetry.Propagator(),
		cfg:     cfg,
		base:    base,
		report:  rc,
		poll:    &http.Client{Timeout: cfg.PollTimeout},
		pending: map[string]entry{},
		wake:    make(chan struct{}, 1),
	}, nil
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
	err := c.postReport(ctx, &rep)
	var rejected *RejectedError
	if err != nil && !errors.As(err, &rejected) {
		return err
	}
	if rejected != nil {
		// The hub will never accept this batch as it is: retrying cannot help.
		c.cfg.Logger.Error("hub rejected a report; dropping it", "err", rejected, "apps", len(entries))
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

// RejectedError is a report the hub refused as invalid (4xx other than auth and rate
// limiting).
type RejectedError struct {
	// Status is the HTTP status.
	Status int
	// Response is the hub's error, when it sent one.
	Response apiv1.ErrorResponse
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("hub rejected the report: %d %s: %s (field %q)", e.Status, e.Response.Code, e.Response.Message, e.Response.Field)
}

func (c *Client) postReport(ctx context.Context, rep *apiv1.StatusReport) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+apiv1.ReportPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.authorize(ctx, req.Header); err != nil {
		return err
	}
	resp, err := c.report.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", apiv1.ReportPath, err)
	}
	defer resp.Body.Close()
	return checkResponse(resp)
}

func checkResponse(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	var er apiv1.ErrorResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&er)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("hub answered %s: %s", resp.Status, er.Message)
	default:
		return &RejectedError{Status: resp.StatusCode, Response: er}
	}
}

func (c *Client) authorize(ctx context.Context, h http.Header) error {
	token, err := c.cfg.Token()
	if err != nil {
		return fmt.Errorf("reading the agent token: %w", err)
	}
	h.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	c.prop.Inject(ctx, propagation.HeaderCarrier(h))
	return nil
}

// WaitDesired long-polls the hub: it returns when the cluster's desired state changed
// after since (Changed true), or when the hub's hold time ends (Changed false).
func (c *Client) WaitDesired(ctx context.Context, since string) (apiv1.DesiredRevision, error) {
	q := url.Values{"cluster": {c.cfg.Cluster}, "since": {since}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+apiv1.DesiredPath+"?"+q.Encode(), nil)
	if err != nil {
		return apiv1.DesiredRevision{}, err
	}
	if err := c.authorize(ctx, req.Header); err != nil {
		return apiv1.DesiredRevision{}, err
	}
	resp, err := c.poll.Do(req)
	if err != nil {
		return apiv1.DesiredRevision{}, fmt.Errorf("GET %s: %w", apiv1.DesiredPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiv1.DesiredRevision{}, checkResponse(resp)
	}
	var d apiv1.DesiredRevision
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&d); err != nil {
		return apiv1.DesiredRevision{}, fmt.Errorf("decoding %s answer: %w", apiv1.DesiredPath, err)
	}
	return d, nil
}
