package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestResetPassword(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, db := newTestStore(t, Options{Now: clock.Now})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)

	token, expires, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, token)
	if !expires.Equal(clock.Now().Add(DefaultResetTTL)) {
		t.Errorf("expires %v, want now + DefaultResetTTL", expires)
	}
	assertStoredUnder(t, db, bucketResets, token)
	assertSecretNotStored(t, db, token)

	target, err := s.ResetTarget(ctx, token)
	if err != nil || target.ID != u.ID || target.Email != u.Email {
		t.Fatalf("ResetTarget = %v, %v", target, err)
	}

	// A bad new password is refused without spending the token.
	for _, pw := range []string{"short", strings.Repeat("x", MaxPasswordLength+1)} {
		if _, err := s.ResetPassword(ctx, token, pw); !errors.Is(err, ErrPasswordTooShort) && !errors.Is(err, ErrPasswordTooLong) {
			t.Errorf("ResetPassword(len %d): error %v, want a length error", len(pw), err)
		}
	}

	clock.Advance(time.Minute)
	const newPassword = "a brand new passphrase"
	got, err := s.ResetPassword(ctx, token, newPassword)
	if err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if got.ID != u.ID || got.PasswordHash == u.PasswordHash || !got.SessionsNotBefore.Equal(clock.Now()) {
		t.Errorf("ResetPassword = %v; want new hash and SessionsNotBefore %v", got, clock.Now())
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("old password after reset: error %v, want ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, u.Email, newPassword); err != nil {
		t.Errorf("new password after reset: %v", err)
	}

	// Single use.
	if _, err := s.ResetPassword(ctx, token, "and another password"); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("second use: error %v, want ErrResetInvalid", err)
	}
	if _, err := s.ResetTarget(ctx, token); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("ResetTarget after use: error %v, want ErrResetInvalid", err)
	}
	assertBucketEmpty(t, db, bucketResets)
	assertBucketEmpty(t, db, bucketResetUsers)

	if _, _, err := s.CreateResetToken(ctx, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateResetToken(unknown): error %v, want ErrNotFound", err)
	}
}

func TestResetTokenInvalid(t *testing.T) {
	ctx := context.Background()
	s, _, _, admin := newInviteStore(t, Options{})
	token, _, err := s.CreateResetToken(ctx, admin.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, invite := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	bad := "A" + token[1:]
	if bad == token {
		bad = "B" + token[1:]
	}
	for desc, tok := range map[string]string{
		"empty":                 "",
		"short":                 token[:42],
		"long":                  token + "A",
		"one character changed": bad,
		"invitation token":      invite,
	} {
		before := s.limiter.total.Load()
		if _, err := s.ResetTarget(ctx, tok); !errors.Is(err, ErrResetInvalid) {
			t.Errorf("ResetTarget(%s): error %v, want ErrResetInvalid", desc, err)
		}
		if _, err := s.ResetPassword(ctx, tok, "a brand new passphrase"); !errors.Is(err, ErrResetInvalid) {
			t.Errorf("ResetPassword(%s): error %v, want ErrResetInvalid", desc, err)
		} else if strings.Contains(err.Error(), tok) && tok != "" {
			t.Errorf("ResetPassword(%s): error leaks the token: %v", desc, err)
		}
		if n := s.limiter.total.Load() - before; n != 0 {
			t.Errorf("%s: computed %d hashes, want 0", desc, n)
		}
	}
	// Nor is a reset token an invitation.
	if _, err := s.Invitation(ctx, token); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("reset token as invitation: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.ResetTarget(ctx, token); err != nil {
		t.Errorf("refusals spent the token: %v", err)
	}
}

func TestResetTokenExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, db := newTestStore(t, Options{Now: clock.Now})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	token, expires, err := s.CreateResetToken(ctx, u.ID, 10*time.Minute)
	if err != nil || !expires.Equal(clock.Now().Add(10*time.Minute)) {
		t.Fatalf("CreateResetToken = %v, %v", expires, err)
	}
	clock.Advance(10*time.Minute - time.Nanosecond)
	if _, err := s.ResetTarget(ctx, token); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clock.Advance(time.Nanosecond)
	if _, err := s.ResetTarget(ctx, token); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("at expiry: error %v, want ErrResetInvalid", err)
	}
	if _, err := s.ResetPassword(ctx, token, "a brand new passphrase"); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("ResetPassword at expiry: error %v, want ErrResetInvalid", err)
	}
	if got, _ := s.Get(ctx, u.ID); got.PasswordHash != u.PasswordHash {
		t.Error("expired token changed the password")
	}

	// The next token deletes expired ones, of every user.
	other := mustSignUp(t, s, "bob@example.com", "Bob", testPassword)
	if _, _, err := s.CreateResetToken(ctx, other.ID, -1); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, db, bucketResets); n != 1 {
		t.Errorf("%d resets stored, want 1", n)
	}
	if n := bucketLen(t, db, bucketResetUsers); n != 1 {
		t.Errorf("%d reset index entries stored, want 1", n)
	}
}

func TestResetTokenReplaced(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t, Options{})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	first, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatal("same token twice")
	}
	if _, err := s.ResetPassword(ctx, first, "a brand new passphrase"); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("replaced token: error %v, want ErrResetInvalid", err)
	}
	if n := bucketLen(t, db, bucketResets); n != 1 {
		t.Errorf("%d resets stored, want 1", n)
	}
	if _, err := s.ResetPassword(ctx, second, "a brand new passphrase"); err != nil {
		t.Errorf("current token: %v", err)
	}
}

func TestResetDisabledUser(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	token, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResetTarget(ctx, token); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("ResetTarget of disabled user: error %v, want ErrResetInvalid", err)
	}
	if _, err := s.ResetPassword(ctx, token, "a brand new passphrase"); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("ResetPassword of disabled user: error %v, want ErrResetInvalid", err)
	}
	if got, _ := s.Get(ctx, u.ID); got.PasswordHash != u.PasswordHash {
		t.Error("disabled user's password changed")
	}
}

func TestResetPasswordConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 8})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	token, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.ResetPassword(ctx, token, fmt.Sprintf("new password %d", i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("resets %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrResetInvalid):
			t.Errorf("reset %d: error %v, want ErrResetInvalid", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no reset succeeded")
	}
	if _, err := s.Authenticate(ctx, u.Email, fmt.Sprintf("new password %d", winner)); err != nil {
		t.Errorf("winner's password: %v", err)
	}
}

func TestNewOperationsCancelledContext(t *testing.T) {
	s, _, _, admin := newInviteStore(t, Options{})
	inv, invite := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	viewer := mustSignUp(t, s, "carol@example.com", "Carol", testPassword)
	reset, _, err := s.CreateResetToken(context.Background(), viewer.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checks := map[string]error{}
	_, _, checks["CreateInvitation"] = s.CreateInvitation(ctx, "dave@example.com", RoleViewer, admin.ID, 0)
	_, checks["Invitations"] = s.Invitations(ctx)
	_, checks["RevokeInvitation"] = s.RevokeInvitation(ctx, inv.ID)
	_, checks["Invitation"] = s.Invitation(ctx, invite)
	_, checks["AcceptInvitation"] = s.AcceptInvitation(ctx, invite, "Bob", testPassword)
	_, checks["List"] = s.List(ctx)
	_, checks["SetRole"] = s.SetRole(ctx, viewer.ID, RoleAdmin)
	_, checks["Remove"] = s.Remove(ctx, viewer.ID)
	_, checks["ByEmailOrID"] = s.ByEmailOrID(ctx, viewer.ID)
	_, checks["SetName"] = s.SetName(ctx, viewer.ID, "X")
	_, checks["ChangePassword"] = s.ChangePassword(ctx, viewer.ID, testPassword, "a brand new passphrase")
	_, checks["RevokeSessions"] = s.RevokeSessions(ctx, viewer.ID)
	_, _, checks["CreateResetToken"] = s.CreateResetToken(ctx, viewer.ID, 0)
	_, checks["ResetPassword"] = s.ResetPassword(ctx, reset, "a brand new passphrase")
	_, checks["ResetTarget"] = s.ResetTarget(ctx, reset)
	for name, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled context: error %v, want context.Canceled", name, err)
		}
	}
	bg := context.Background()
	if n, _ := s.Count(bg); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if list, _ := s.Invitations(bg); len(list) != 1 {
		t.Errorf("Invitations = %+v, want the one", list)
	}
	if got, _ := s.Get(bg, viewer.ID); got.Role != RoleViewer || got.Name != "Carol" || !got.SessionsNotBefore.IsZero() {
		t.Errorf("cancelled operations changed %v", got)
	}
	if _, err := s.ResetTarget(bg, reset); err != nil {
		t.Errorf("cancelled operations spent the reset token: %v", err)
	}
}
