package op

import (
	"testing"
	"time"
)

func TestThrottleEngagesGrowsAndReleases(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now }, 3)
	for n := range 3 {
		th.fail("k")
		if d := th.wait("k"); d != 0 {
			t.Fatalf("after %d free failures wait = %v, want 0", n+1, d)
		}
	}
	th.fail("k")
	first := th.wait("k")
	if first <= 0 {
		t.Fatal("throttle did not engage after the free failures")
	}
	th.fail("k")
	if second := th.wait("k"); second <= first {
		t.Errorf("delay did not grow: %v then %v", first, second)
	}
	if th.wait("other") != 0 {
		t.Error("an unrelated key is throttled")
	}
	for range 40 {
		th.fail("k")
	}
	if d := th.wait("k"); d > th.max {
		t.Errorf("delay %v exceeds the cap %v (no permanent lockout)", d, th.max)
	}
	now = now.Add(th.max + time.Second)
	if d := th.wait("k"); d != 0 {
		t.Errorf("still throttled after the cap elapsed: %v", d)
	}
	th.fail("k") // a quiet period forgets the history
	if d := th.wait("k"); d != 0 {
		t.Errorf("history not forgotten after a quiet period: %v", d)
	}
	th.succeed("k")
	if _, ok := th.entries["k"]; ok {
		t.Error("success did not forget the key")
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
