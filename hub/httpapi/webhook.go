package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// WebhookPath receives Git push webhooks from GitHub, GitLab and Gitea.
const WebhookPath = "/api/v1/webhooks/git"

// WebhookResponse answers a webhook.
type WebhookResponse struct {
	// Provider is the sender: github, gitlab or gitea.
	Provider string `json:"provider"`
	// Event is the event type the sender named, e.g. push or ping.
	Event string `json:"event"`
	// Refreshed is true when the hub fetched the repository for this event.
	Refreshed bool `json:"refreshed"`
	// Previous is the head before the fetch.
	Previous string `json:"previous,omitempty"`
	// Revision is the head after the fetch.
	Revision string `json:"revision,omitempty"`
	// Message says why nothing was fetched, when Refreshed is false.
	Message string `json:"message,omitempty"`
}

// pushPayload is what the hub reads of a push event; GitHub, GitLab and Gitea all
// send the pushed ref.
type pushPayload struct {
	Ref string `json:"ref"`
}

// webhook answers POST /api/v1/webhooks/git: a push to the branch (signature
// verified) fetches the repository; the Publisher then wakes the long-polls of the
// clusters the new commits change.
func (a *API) webhook(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if len(a.cfg.WebhookSecret) == 0 {
		return newError(apiv1.CodeNotFound, "", "webhooks are not configured on this hub (--webhook-secret-file)")
	}
	// Refuse before reading a byte of the body: an unsigned request costs nothing.
	if !hasSignature(r.Header) {
		a.metrics.webhook(r.Context(), "unknown", "refused")
		a.authFailed(r, "webhook without a signature")
		return errUnauthorized("no webhook signature: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea) or X-Gitlab-Token (GitLab)")
	}
	if r.ContentLength > MaxWebhookBytes {
		return &apiv1.TooLargeError{Limit: MaxWebhookBytes}
	}
	select {
	case a.webhooks <- struct{}{}:
		defer func() { <-a.webhooks }()
	default:
		return tooMany(fmt.Sprintf("%d webhooks are being handled", cap(a.webhooks)))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBytes+1))
	if err != nil {
		return newError(apiv1.CodeBadRequest, "", "read body: %v", err)
	}
	if len(body) > MaxWebhookBytes {
		return &apiv1.TooLargeError{Limit: MaxWebhookBytes}
	}
	provider, event, err := a.verifyWebhook(r.Header, body)
	if err != nil {
		a.metrics.webhook(r.Context(), provider, "refused")
		a.authFailed(r, "webhook signature does not match")
		return err
	}
	out := WebhookResponse{Provider: provider, Event: event}
	// A replayed delivery (same delivery id, or the same signed body) is acknowledged
	// and does nothing: each handled push costs a fetch under the store's lock.
	keys := deliveryKeys(r.Header, body)
	if !a.deliveries.claim(keys...) {
		out.Message = "delivery handled already: nothing to do"
		a.metrics.webhook(r.Context(), provider, "replayed")
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if !isPush(event) {
		out.Message = "not a push event: nothing to do"
		a.metrics.webhook(r.Context(), provider, "ignored")
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		a.metrics.webhook(r.Context(), provider, "refused")
		return newError(apiv1.CodeBadRequest, "", "the push payload is not JSON: %v", err)
	}
	if want := "refs/heads/" + a.cfg.Branch; p.Ref != want {
		out.Message = fmt.Sprintf("a push to %q, not to %q: nothing to do", truncate(p.Ref), want)
		a.metrics.webhook(r.Context(), provider, "ignored")
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	prev, rev, err := a.cfg.Git.Refresh(r.Context())
	if err != nil {
		a.deliveries.forget(keys...) // the sender's retry must be served
		a.metrics.webhook(r.Context(), provider, "failed")
		a.log.Warn("webhook: fetch failed", "provider", provider, "err", err)
		return &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "fetching the repository failed; retry later"}, retryAfter: "10"}
	}
	a.metrics.webhook(r.Context(), provider, "refreshed")
	a.log.Info("webhook: fetched", "provider", provider, "previous", prev, "revision", rev)
	out.Refreshed, out.Previous, out.Revision = true, prev, rev
	writeJSON(w, http.StatusOK, out)
	return nil
}

// verifyWebhook checks the request's signature against the secret and returns the
// provider and event type. GitHub and Gitea sign the body with HMAC-SHA256; GitLab
// sends the secret itself. Both are compared in constant time.
func (a *API) verifyWebhook(h http.Header, body []byte) (provider, event string, err error) {
	secret := a.cfg.WebhookSecret
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		provider, event = "github", h.Get("X-GitHub-Event")
		if e := h.Get("X-Gitea-Event"); e != "" {
			provider, event = "gitea", e
		}
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		if !ok || !validHMAC(secret, body, sig) {
			return provider, event, errUnauthorized("X-Hub-Signature-256 does not match the body and the webhook secret")
		}
	case h.Get("X-Gitea-Signature") != "":
		provider, event = "gitea", h.Get("X-Gitea-Event")
		if !validHMAC(secret, body, h.Get("X-Gitea-Signature")) {
			return provider, event, errUnauthorized("X-Gitea-Signature does not match the body and the webhook secret")
		}
	case h.Get("X-Gitlab-Token") != "":
		provider, event = "gitlab", h.Get("X-Gitlab-Event")
		if subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), secret) != 1 {
			return provider, event, errUnauthorized("X-Gitlab-Token is not the webhook secret")
		}
	default:
		return "unknown", "", errUnauthorized("no webhook signature: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea) or X-Gitlab-Token (GitLab)")
	}
	return provider, event, nil
}

// hasSignature tells whether a request carries one of the signature headers.
func hasSignature(h http.Header) bool {
	return h.Get("X-Hub-Signature-256") != "" || h.Get("X-Gitea-Signature") != "" || h.Get("X-Gitlab-Token") != ""
}

// deliveryKeys are what a delivery is remembered by against replays: the sender's
// delivery id, if any, and the hash of the signed body.
func deliveryKeys(h http.Header, body []byte) []string {
	sum := sha256.Sum256(body)
	keys := []string{"body:" + hex.EncodeToString(sum[:])}
	for _, name := range []string{"X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID"} {
		if id := h.Get(name); id != "" {
			keys = append(keys, "id:"+truncate(id))
			break
		}
	}
	return keys
}

// validHMAC tells whether sig (hex) is the HMAC-SHA256 of body with secret.
func validHMAC(secret, body []byte, sig string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// isPush tells whether an event type is a push: "push" (GitHub, Gitea) or "Push
// Hook" (GitLab).
func isPush(event string) bool {
	return strings.EqualFold(event, "push") || strings.EqualFold(event, "Push Hook")
}
