package op

import (
	"sync"
	"time"
)

// throttle slows down repeated failed sign-ins per key (a client address or
// an account). After free failures every further one doubles the wait, up to
// max; a success or quiet period forgets the key. There is no permanent
// lockout, so an attacker cannot lock a real user out for long.
type throttle struct {
	mu      sync.Mutex
	now     func() time.Time
	free    int
	base    time.Duration
	max     time.Duration
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	until    time.Time
	last     time.Time
}

const throttleMaxEntries = 100_000

// newThrottle returns a throttle that lets free failures through before
// delays start.
func newThrottle(now func() time.Time, free int) *throttle {
	return &throttle{now: now, free: free, base: time.Second, max: 15 * time.Minute, entries: map[string]*throttleEntry{}}
}

// attempt reserves an attempt for key before the password is checked, so
// that concurrent guesses count as they arrive, not as they finish. It
// returns 0 when the attempt may go ahead (counted as a failure until
// succeed or undo take it back), or how long to wait: at most free
// attempts go ahead per key before the delays start, and each further one
// doubles the delay, up to max.
func (t *throttle) attempt(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e, ok := t.entries[key]
	if ok {
		if d := e.until.Sub(now); d > 0 {
			return d
		}
	}
	if !ok || now.Sub(e.last) > t.max {
		t.makeRoomLocked(now)
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	e.last = now
	over := e.failures - t.free
	if over <= 0 {
		return 0
	}
	d := t.base << min(over-1, 20)
	if d > t.max || d <= 0 {
		d = t.max
	}
	e.until = now.Add(d)
	return d
}

// undo takes back one attempt of key: it succeeded.
func (t *throttle) undo(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[key]; ok && e.failures > 0 {
		e.failures--
		if e.failures <= t.free {
			e.until = time.Time{}
		}
	}
}

// makeRoomLocked keeps the map under its cap: stale entries go first, then
// arbitrary ones.
func (t *throttle) makeRoomLocked(now time.Time) {
	if len(t.entries) < throttleMaxEntries {
		return
	}
	for k, e := range t.entries {
		if now.Sub(e.last) > t.max {
			delete(t.entries, k)
		}
	}
	for k := range t.entries {
		if len(t.entries) < throttleMaxEntries {
			break
		}
		delete(t.entries, k)
	}
}

// succeed forgets key.
func (t *throttle) succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}
