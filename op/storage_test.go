package op

import (
	"context"
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
