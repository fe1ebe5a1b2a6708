package rollout

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Limits of the webhook notifier.
const (
	// webhookQueue is how many notifications wait for delivery; more are dropped
	// (and logged): a slow receiver never stalls the driver.
	webhookQueue = 64
	// webhookTimeout bounds one delivery attempt.
	webhookTimeout = 10 * time.Second
	// webhookRetries is how many times a failed delivery is retried.
	webhookRetries = 3
	// SignatureHeader carries the HMAC-SHA256 of the body with the webhook secret,
	// as "sha256=<hex>" (GitHub's form).
	SignatureHeader = "X-Outpost-Signature-256"
)

// WebhookPayload is the body a rollout webhook receives.
type WebhookPayload struct {
	// Event is "rollout".
	Event string `json:"event"`
	// What says what happened: the run's new state and its reason.
	What string `json:"what"`
	// Rollout is the run.
	Rollout *apiv1.Rollout `json:"rollout"`
}

// Webhook posts the runs that need a person (paused, rolling back, rolled back,
// aborted) to a URL, signed with a secret, from one background worker.
type Webhook struct {
	url    string
	secret []byte
	client *retryablehttp.Client
	log    *slog.Logger
	queue  chan WebhookPayload
}

// NewWebhook returns a notifier posting to rawURL (http or https) and signing with
// secret (none when empty). Run delivers.
func NewWebhook(rawURL string, secret []byte, log *slog.Logger) (*Webhook, error) {
	if err := CheckWebhookURL(rawURL); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := retryablehttp.NewClient()
	c.RetryMax = webhookRetries
	c.RetryWaitMin, c.RetryWaitMax = 500*time.Millisecond, 5*time.Second
	c.HTTPClient.Timeout = webhookTimeout
	c.Logger = nil // its default writes to stderr; failures are logged below
	return &Webhook{url: rawURL, secret: secret, client: c, log: log, queue: make(chan WebhookPayload, webhookQueue)}, nil
}

// CheckWebhookURL refuses a URL that is not http(s) with a host; the error shows
// the URL without its password.
func CheckWebhookURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := "(unparsable)"
		if err == nil {
			shown = u.Redacted()
		}
		return fmt.Errorf("rollout webhook %q is not an http(s) URL", shown)
	}
	return nil
}

// Notify queues a notification.
func (w *Webhook) Notify(_ context.Context, r *apiv1.Rollout, what string) {
	select {
	case w.queue <- WebhookPayload{Event: "rollout", What: what, Rollout: r}:
	default:
		w.log.Warn("rollout webhook queue full: notification dropped", "rollout", r.ID, "what", what)
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-w.queue:
			if err := w.deliver(ctx, p); err != nil && ctx.Err() == nil {
				w.log.Warn("rollout webhook not delivered", "rollout", p.Rollout.ID, "what", p.What, "err", err)
			}
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, p WebhookPayload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", w.url, resp.Status)
	}
	return nil
}

// Sign is the signature header value of body: "sha256=" and the hex HMAC-SHA256.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
