package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// authLimiter is a token bucket of failed authentications per source address: an
// address may fail burst times at once and once more every refill after that; while
// its bucket is empty, its requests are refused before any token is checked. The map
// is bounded: when full, a recovered (full) bucket is dropped, else the one idle the
// longest.
type authLimiter struct {
	mu      sync.Mutex
	burst   float64
	refill  time.Duration
	max     int
	now     func() time.Time
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxAuthBuckets bounds the addresses the limiter remembers.
const maxAuthBuckets = 10000

func newAuthLimiter(burst int, refill time.Duration, now func() time.Time) *authLimiter {
	return &authLimiter{burst: float64(burst), refill: refill, max: maxAuthBuckets, now: now, buckets: map[netip.Prefix]*bucket{}}
}

// level returns the bucket's tokens now, refilled since its last update.
func (l *authLimiter) level(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.refill))
}

// allowed tells whether addr may try to authenticate now.
func (l *authLimiter) allowed(addr netip.Prefix) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	return !ok || l.level(b, l.now()) >= 1
}

// failed takes one token of addr's bucket and tells whether the bucket is empty now
// (the address is refused from now on, until it refills).
func (l *authLimiter) failed(addr netip.Prefix) (blocked bool) {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[addr] = b
	}
	b.tokens = max(0, l.level(b, now)-1)
	b.last = now
	return b.tokens < 1
}

// evict drops the buckets that refilled; if none did, the one idle the longest.
func (l *authLimiter) evict(now time.Time) {
	var oldest netip.Prefix
	var oldestAt time.Time
	for k, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if oldestAt.IsZero() || b.last.Before(oldestAt) {
			oldest, oldestAt = k, b.last
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, oldest)
	}
}

// sourcePrefix is the address a request comes from, as the limiter keys it: the IPv4
// address, or the /64 of an IPv6 address (one host usually holds a whole /64). Behind
// a proxy this is the proxy's address.
func sourcePrefix(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// replayMemory remembers the keys of the last webhook deliveries handled (delivery
// ids and body hashes), a bounded FIFO.
type replayMemory struct {
	mu    sync.Mutex
	seen  map[string]int // key → its place in order
	order []string
	next  int
}

// webhookMemory is how many delivery keys the hub remembers against replays.
const webhookMemory = 1024

func newReplayMemory(n int) *replayMemory {
	return &replayMemory{seen: map[string]int{}, order: make([]string, n)}
}

// claim records keys and tells whether none of them was seen before. A claim that
// failed to be handled is given back with forget, so the sender's retry is served.
func (m *replayMemory) claim(keys ...string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if _, ok := m.seen[k]; ok {
			return false
		}
	}
	for _, k := range keys {
		if old := m.order[m.next]; old != "" && m.seen[old] == m.next {
			delete(m.seen, old)
		}
		m.order[m.next] = k
		m.seen[k] = m.next
		m.next = (m.next + 1) % len(m.order)
	}
	return true
}

// forget drops keys (their ring places are reused in turn).
func (m *replayMemory) forget(keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.seen, k)
	}
}

// knownMethods are the HTTP methods of RFC 9110 and PATCH, which the metrics name as
// they are; any other method is "_OTHER" (OpenTelemetry's HTTP semantic conventions),
// so that a client cannot create a metric series per method it invents.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodConnect: true, http.MethodOptions: true, http.MethodTrace: true,
}

// methodLabel is the http.request.method attribute of a method.
func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "_OTHER"
}

// tooMany is a 429 with Retry-After, saying what limit the caller hit.
func tooMany(msg string) error {
	return &apiError{resp: apiv1.ErrorResponse{Code: apiv1.CodeTooManyRequests, Message: msg + ": retry later"}, retryAfter: tooManyRetryAfter}
}
