// Package slots counts the requests in flight per key (a token, a cluster), so that a
// server can bound what one caller holds at once: long-polls, event streams, Git
// fetches.
package slots

import "sync"

// Slots bounds the requests in flight per key. The zero value is not usable; use New.
type Slots struct {
	mu    sync.Mutex
	limit int
	held  map[string]int
}

// New returns Slots allowing limit requests per key.
func New(limit int) *Slots { return &Slots{limit: limit, held: map[string]int{}} }

// Acquire takes one of key's slots; false when key holds Limit already. A taken slot
// is given back with Release.
func (s *Slots) Acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] >= s.limit {
		return false
	}
	s.held[key]++
	return true
}

// Release gives back one of key's slots.
func (s *Slots) Release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] <= 1 {
		delete(s.held, key)
		return
	}
	s.held[key]--
}

// Limit returns the slots per key.
func (s *Slots) Limit() int { return s.limit }
