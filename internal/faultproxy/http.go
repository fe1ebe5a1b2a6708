package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Request is one request a Kube proxy forwarded.
type Request struct {
	// At is when the proxy received it.
	At time.Time
	// Method and Path are the request's.
	Method, Path string
	// DryRun is set for a dry-run request (?dryRun=All).
	DryRun bool
}

// Write reports whether the request changes something: not a read, not a dry-run.
func (r Request) Write() bool {
	return !r.DryRun && r.Method != http.MethodGet && r.Method != http.MethodHead
}

// Lease reports whether the request is about a coordination.k8s.io Lease (leader
// election), not sync work.
func (r Request) Lease() bool { return strings.Contains(r.Path, "/apis/coordination.k8s.io/") }

func (r Request) String() string {
	return r.At.Format("15:04:05.000") + " " + r.Method + " " + r.Path
}

// HTTP is a plain-HTTP proxy for one client in front of a server (a
// kube-apiserver, a Git server, the hub): it records every request, calls the
// OnRequest hook before forwarding (which may refuse it) and the OnResponse hook
// after the response was sent.
type HTTP struct {
	srv *http.Server
	lis net.Listener

	mu         sync.Mutex
	reqs       []Request
	onRequest  func(Request) error
	onResponse func(Request)
}

// Kube is an HTTP proxy in front of a kube-apiserver.
type Kube = HTTP

// NewKube starts a proxy to the apiserver of cfg on a loopback port; it
// authenticates with cfg, so the client needs no credentials.
func NewKube(cfg *rest.Config) (*HTTP, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("transport to %s: %w", cfg.Host, err)
	}
	return NewHTTP(cfg.Host, rt)
}

// NewHTTP starts a proxy to the server at base (a URL) on a loopback port, sending
// through rt (nil: a default transport).
func NewHTTP(base string, rt http.RoundTripper) (*HTTP, error) {
	target, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", base, err)
	}
	if rt == nil {
		rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &HTTP{lis: lis}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		Transport:     rt,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	k.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{At: time.Now(), Method: r.Method, Path: r.URL.Path, DryRun: r.URL.Query().Get("dryRun") != ""}
		k.mu.Lock()
		k.reqs = append(k.reqs, req)
		before, after := k.onRequest, k.onResponse
		k.mu.Unlock()
		if before != nil {
			if err := before(req); err != nil {
				http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
				return
			}
		}
		rp.ServeHTTP(w, r)
		if after != nil {
			after(req)
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.srv.Serve(lis) }()
	return k, nil
}

// URL is the proxy's base URL (plain HTTP; for an apiserver, with no credentials).
func (k *HTTP) URL() string { return "http://" + k.lis.Addr().String() }

// OnRequest sets the function called with each request before it is forwarded (nil:
// none); it runs on the request's goroutine, so it may hold the request, and an
// error refuses it (502, not forwarded).
func (k *HTTP) OnRequest(f func(Request) error) {
	k.mu.Lock()
	k.onRequest = f
	k.mu.Unlock()
}

// OnResponse sets the function called with each request after its response was
// forwarded to the client (nil: none).
func (k *HTTP) OnResponse(f func(Request)) {
	k.mu.Lock()
	k.onResponse = f
	k.mu.Unlock()
}

// Requests returns the requests received at or after since.
func (k *HTTP) Requests(since time.Time) []Request {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Request
	for _, r := range k.reqs {
		if !r.At.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// Writes returns the writes received at or after since, Lease renewals left out.
func (k *HTTP) Writes(since time.Time) []Request {
	var out []Request
	for _, r := range k.Requests(since) {
		if r.Write() && !r.Lease() {
			out = append(out, r)
		}
	}
	return out
}

// Close stops the proxy and its connections.
func (k *HTTP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := k.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return k.srv.Close()
}
