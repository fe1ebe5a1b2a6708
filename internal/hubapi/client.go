package hubapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// Options configure a Client. The zero value is usable; defaults are set in one place,
// withDefaults.
type Options struct {
	// HTTPClient sends the requests, e.g. one with a custom TLS configuration. Default:
	// a pooled client with the usual dial and TLS handshake timeouts.
	HTTPClient *http.Client
	// Logger receives the retry log of go-retryablehttp, every record at Debug: a
	// failed attempt is not an error of the caller's (it gets the outcome as the
	// call's error, and a cancelled long-poll at shutdown is no failure at all).
	// Default: discarded.
	Logger *slog.Logger
	// Timeout bounds each call, retries included. Default 30 s.
	Timeout time.Duration
	// LongPollTimeout bounds a Desired call, which the hub holds for about 30 s.
	// Default 45 s.
	LongPollTimeout time.Duration
	// RetryMax is the number of retries after the first attempt; negative disables
	// retries. Default 3.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff between attempts (a Retry-After
	// header of a 429 or 503 answer wins). Defaults 250 ms and 2 s.
	RetryWaitMin, RetryWaitMax time.Duration
	// UserAgent is sent with every request. Default "outpost-hubapi".
	UserAgent string
	// MaxResponseBytes bounds the body of an answer read. Default 64 MiB.
	MaxResponseBytes int64
	// Token, when set, returns the bearer token for every call in place of New's token
	// argument, e.g. read from a file that a rotated Secret updates. It is trimmed; an
	// error fails the call (wrapped, never holding the token). Default: none.
	Token func() (string, error)
	// Header, when set, adds headers to every request after the client's own, e.g. the
	// trace context. Default: none.
	Header func(ctx context.Context, h http.Header)
}

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = cleanhttp.DefaultPooledClient()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.LongPollTimeout <= 0 {
		o.LongPollTimeout = 45 * time.Second
	}
	switch {
	case o.RetryMax == 0:
		o.RetryMax = 3
	case o.RetryMax < 0:
		o.RetryMax = 0
	}
	if o.RetryWaitMin <= 0 {
		o.RetryWaitMin = 250 * time.Millisecond
	}
	if o.RetryWaitMax < o.RetryWaitMin {
		o.RetryWaitMax = max(2*time.Second, o.RetryWaitMin)
	}
	if o.UserAgent == "" {
		o.UserAgent = "outpost-hubapi"
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 20
	}
	return o
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client calls the hub's REST API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	opts  Options
	// idempotent sends GET, PUT and DELETE; once sends the writes that must not be
	// repeated once the hub may have acted on them.
	idempotent, once *retryablehttp.Client
}

// New returns a client of the hub at baseURL (http or https, optionally with a path
// prefix under which /api/v1 lives) that authenticates with the bearer token (none
// when empty).
func New(baseURL, token string, opts Options) (*Client, error) {
	// Errors show the URL without a password (u.Redacted), or not at all.
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("hub URL: not a valid URL: %w", stripURL(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("hub URL %q: want http:// or https:// and a host", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("hub URL %q: must not hold credentials; pass a token", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub URL %q: must not have a query or fragment", u.Redacted())
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("hub token: must be one line")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	opts = opts.withDefaults()
	c := &Client{base: u, token: token, opts: opts}
	c.idempotent = c.retryClient(true)
	c.once = c.retryClient(false)
	return c, nil
}

// BaseURL returns the hub URL the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) retryClient(idempotent bool) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   c.opts.HTTPClient,
		Logger:       debugLogger{c.opts.Logger},
		RetryWaitMin: c.opts.RetryWaitMin,
		RetryWaitMax: c.opts.RetryWaitMax,
		RetryMax:     c.opts.RetryMax,
		CheckRetry:   retryPolicy(idempotent),
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// retryPolicy decides whether to retry an attempt. See the package documentation.
func retryPolicy(idempotent bool) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			// DefaultRetryPolicy refuses the hopeless cases: bad scheme, too many
			// redirects, an untrusted certificate.
			retry, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err)
			return retry && (idempotent || notSent(err)), nil
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			return true, nil
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return idempotent, nil
		}
		return false, nil
	}
}

// notSent tells whether a transport error happened before the request could reach
// the hub: the connection was never made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// request is one API call.
type request struct {
	method string
	path   string
	query  url.Values
	// body is encoded as JSON when not nil.
	body any
	// ifMatch is sent as If-Match when not empty.
	ifMatch string
	// want lists the success statuses; default 200.
	want []int
	// out receives the decoded answer when not nil.
	out any
	// once marks a write that must not be repeated once the hub may have acted on it.
	once bool
	// timeout overrides Options.Timeout.
	timeout time.Duration
}

// do sends r and decodes the answer into r.out. Errors are *APIError,
// *UnreachableError, or the caller's context error.
func (c *Client) do(ctx context.Context, r request) error {
	timeout := c.opts.Timeout
	if r.timeout > 0 {
		timeout = r.timeout
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	target := r.method + " " + u.Path

	var body any
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", target, err)
		}
		body = b
	}
	req, err := retryablehttp.NewRequestWithContext(callCtx, r.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	if err := c.setHeaders(ctx, req.Header, r, body != nil); err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}

	client := c.idempotent
	if r.once {
		client = c.once
	}
	resp, err := client.Do(req)
	if err != nil && resp != nil {
		_ = resp.Body.Close() // an answer that came with an error, e.g. as the call timed out
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", target, ctx.Err())
		}
		if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer to %s within %s", target, timeout)
		}
		return &UnreachableError{URL: c.base.String(), Err: stripURL(err)}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()

	want := r.want
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	ok := false
	for _, s := range want {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		return decodeError(resp)
	}
	if r.out == nil {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", target, ctx.Err())
		}
		return &UnreachableError{URL: c.base.String(), Err: fmt.Errorf("read answer of %s: %w", target, stripURL(err))}
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return fmt.Errorf("%s: answer larger than %d bytes", target, c.opts.MaxResponseBytes)
	}
	if err := json.Unmarshal(data, r.out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", target, err)
	}
	return nil
}

// setHeaders sets the headers of request r: the client's own, the token's and those of
// Options.Header.
func (c *Client) setHeaders(ctx context.Context, h http.Header, r request, hasBody bool) error {
	h.Set("Accept", "application/json")
	h.Set("User-Agent", c.opts.UserAgent)
	if hasBody {
		h.Set("Content-Type", "application/json")
	}
	token := c.token
	if c.opts.Token != nil {
		t, err := c.opts.Token()
		if err != nil {
			return fmt.Errorf("reading the hub token: %w", err)
		}
		if token = strings.TrimSpace(t); strings.ContainsAny(token, "\r\n") {
			return errors.New("hub token: must be one line")
		}
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if r.ifMatch != "" {
		h.Set("If-Match", quoteETag(r.ifMatch))
	}
	if c.opts.Header != nil {
		c.opts.Header(ctx, h)
	}
	return nil
}

// quoteETag returns rev as an entity tag: quoted, unless it is quoted already or weak.
func quoteETag(rev string) string {
	rev = strings.TrimSpace(rev)
	if strings.HasPrefix(rev, `"`) || strings.HasPrefix(rev, "W/") {
		return rev
	}
	return `"` + rev + `"`
}

// stripURL unwraps a *url.Error, whose text repeats method and URL, to its cause; the
// UnreachableError names the hub instead.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readBody reads at most limit bytes of an error answer.
func readBody(resp *http.Response, limit int64) []byte {
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, io.LimitReader(resp.Body, limit))
	return buf.Bytes()
}

// debugLogger is go-retryablehttp's leveled logger writing every record at Debug.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Info(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d debugLogger) Debug(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
