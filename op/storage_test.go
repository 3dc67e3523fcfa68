package op

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"go.etcd.io/bbolt"

	"github.com/latchkey-dev/latchkey/keys"
	"github.com/latchkey-dev/latchkey/users"
)

func testIssuer(t testing.TB) (*Issuer, users.User) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	km, err := keys.New(db, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	us, err := users.New(db, users.Options{Hash: users.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := us.SignUp(context.Background(), "ada@example.com", "Ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	i, err := New(Config{
		Issuer: "http://localhost:8080/oidc", DB: db, Users: us, Keys: km,
		Clients: []Client{{ID: "app", Secret: "s3cret-s3cret", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return i, u
}

// redeemable returns a completed authorization request with a code.
func redeemable(t *testing.T, i *Issuer, u users.User) (*authRequest, string) {
	t.Helper()
	ctx := context.Background()
	req := &oidc.AuthRequest{ClientID: "app", RedirectURI: "http://127.0.0.1:9/cb", ResponseType: oidc.ResponseTypeCode,
		Scopes: []string{"openid", "offline_access"}, State: "s", Nonce: "n"}
	ar, err := i.store.CreateAuthRequest(ctx, req, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := i.store.completeAuthRequest(ar.GetID(), u.ID, time.Now(), []string{"pwd"}, "session"); err != nil {
		t.Fatal(err)
	}
	if err := i.store.SaveAuthCode(ctx, ar.GetID(), "code-"+ar.GetID()); err != nil {
		t.Fatal(err)
	}
	return ar.(*authRequest), "code-" + ar.GetID()
}

// TestReplayDuringRedemptionIssuesNothing: a replayed code that arrives
// after the first redemption consumed the code but before it issued its
// tokens stops those tokens from being issued at all.
func TestReplayDuringRedemptionIssuesNothing(t *testing.T) {
	i, u := testIssuer(t)
	ctx := context.Background()
	_, code := redeemable(t, i, u)
	first, err := i.store.AuthRequestByCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.store.AuthRequestByCode(ctx, code); err == nil {
		t.Fatal("a replayed code was accepted")
	}
	if _, _, _, err := i.store.CreateAccessAndRefreshTokens(ctx, first.(*authRequest), ""); err == nil {
		t.Fatal("tokens were issued for a code replayed during its redemption")
	}
	if _, _, err := i.store.CreateAccessToken(ctx, first.(*authRequest)); err == nil {
		t.Fatal("an access token was issued for a code replayed during its redemption")
	}
	var stored int
	_ = i.db.View(func(tx *bbolt.Tx) error { stored = tx.Bucket(bucketRefresh).Stats().KeyN; return nil })
	if stored != 0 {
		t.Errorf("%d refresh tokens remain after the replay", stored)
	}
}

// TestRefreshReuseDuringRotation: a reused refresh token revokes the
// family even when the legitimate rotation is still issuing its tokens.
func TestRefreshReuseDuringRotation(t *testing.T) {
	i, u := testIssuer(t)
	ctx := context.Background()
	_, code := redeemable(t, i, u)
	ar, _ := i.store.AuthRequestByCode(ctx, code)
	_, rt, _, err := i.store.CreateAccessAndRefreshTokens(ctx, ar.(*authRequest), "")
	if err != nil {
		t.Fatal(err)
	}
	req, err := i.store.TokenRequestByRefreshToken(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.store.revokeFamily(req.(*refreshTokenRequest).rec.Family); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := i.store.CreateAccessAndRefreshTokens(ctx, req, rt); err == nil {
		t.Error("a revoked family still rotated")
	}
}

// TestPendingRequestsAreBounded: anyone can start an authorization
// request, so their number is capped; expired ones make room.
func TestPendingRequestsAreBounded(t *testing.T) {
	i, _ := testIssuer(t)
	now := time.Now()
	i.store.now = func() time.Time { return now }
	i.store.maxPending = 2
	ctx := context.Background()
	req := func() error {
		_, err := i.store.CreateAuthRequest(ctx, &oidc.AuthRequest{ClientID: "app", RedirectURI: "http://127.0.0.1:9/cb",
			ResponseType: oidc.ResponseTypeCode, Scopes: []string{"openid"}}, "")
		return err
	}
	for n := range 2 {
		if err := req(); err != nil {
			t.Fatalf("request %d: %v", n+1, err)
		}
	}
	err := req()
	var oerr *oidc.Error
	if !errors.As(err, &oerr) || oerr.ErrorType != "temporarily_unavailable" {
		t.Fatalf("a request beyond the cap: %v, want temporarily_unavailable", err)
	}
	now = now.Add(i.life.AuthRequest + time.Minute)
	if err := req(); err != nil {
		t.Errorf("expired requests did not make room: %v", err)
	}
}

func TestClientIPBehindTrustedProxies(t *testing.T) {
	i, _ := testIssuer(t)
	i.trustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "198.51.100.7", "192.0.2.1"},                          // untrusted peer: header ignored
		{"10.1.2.3:5000", "198.51.100.7", "198.51.100.7"},                        // trusted proxy: its client
		{"10.1.2.3:5000", "203.0.113.9, 198.51.100.7, 10.9.9.9", "198.51.100.7"}, // nearest untrusted hop
		{"10.1.2.3:5000", "not-an-ip", "10.1.2.3"},                               // malformed chain: the peer
		{"10.1.2.3:5000", "", "10.1.2.3"},                                        // no header: the peer
		{"[::1]:5000", "2001:db8::1", "2001:db8::1"},
		{"10.1.2.3:5000", "::ffff:198.51.100.7", "198.51.100.7"},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := i.clientIP(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}
