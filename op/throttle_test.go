package op

import (
	"strconv"
	"testing"
	"time"
)

func TestThrottleEngagesGrowsAndReleases(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now }, 3)
	for n := range 3 {
		if d := th.attempt("k"); d != 0 {
			t.Fatalf("free attempt %d refused: %v", n+1, d)
		}
	}
	first := th.attempt("k")
	if first <= 0 {
		t.Fatal("throttle did not engage after the free attempts")
	}
	if th.attempt("other") != 0 {
		t.Error("an unrelated key is throttled")
	}
	now = now.Add(first)
	second := th.attempt("k")
	if second <= first {
		t.Errorf("delay did not grow: %v then %v", first, second)
	}
	for range 40 {
		now = now.Add(th.attempt("k"))
	}
	if d := th.attempt("k"); d > th.max {
		t.Errorf("delay %v exceeds the cap %v (no permanent lockout)", d, th.max)
	}
	now = now.Add(th.max + time.Second)
	if d := th.attempt("k"); d != 0 {
		t.Errorf("still throttled after a quiet period longer than the cap: %v", d)
	}
	if e := th.entries["k"]; e.failures != 1 {
		t.Errorf("history not forgotten after a quiet period: %d failures", e.failures)
	}
	th.succeed("k")
	if _, ok := th.entries["k"]; ok {
		t.Error("success did not forget the key")
	}
}

func TestThrottleKeepsItsCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now }, 5)
	for n := range throttleMaxEntries + 10 {
		th.attempt(strconv.Itoa(n))
	}
	if len(th.entries) > throttleMaxEntries {
		t.Errorf("%d entries, cap %d", len(th.entries), throttleMaxEntries)
	}
}

func TestThrottleAttemptReservesBeforeTheCheck(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now }, 3)
	for n := range 3 {
		if d := th.attempt("k"); d != 0 {
			t.Fatalf("attempt %d refused: %v", n+1, d)
		}
	}
	if d := th.attempt("k"); d <= 0 {
		t.Fatal("the fourth attempt in flight went ahead")
	}
	if d := th.attempt("k"); d <= 0 {
		t.Fatal("an attempt during the delay went ahead")
	}
	// undo gives back an attempt that turned out to be a success.
	other := newThrottle(func() time.Time { return now }, 1)
	other.attempt("shared")
	other.undo("shared")
	if d := other.attempt("shared"); d != 0 {
		t.Errorf("an undone attempt still counts: %v", d)
	}
}
