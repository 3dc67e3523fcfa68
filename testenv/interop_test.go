package testenv_test

// Interoperability: a relying party we did not write (coreos/go-oidc with
// golang.org/x/oauth2) signs in against the built-in issuer using nothing
// but discovery, and verifies everything it is given.

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/testenv"
)

// interopClaims are the ID token claims the RP reads.
type interopClaims struct {
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
	AuthTime      int64    `json:"auth_time"`
	AZP           string   `json:"azp"`
}

// interopRP is the independent relying party for client "app".
type interopRP struct {
	t        *testing.T
	env      *testenv.Env
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newInteropRP(t *testing.T, env *testenv.Env, scopes ...string) *interopRP {
	t.Helper()
	// The RP's own HTTP client: no cookies, nothing shared with the browser.
	ctx := oidc.ClientContext(t.Context(), &http.Client{Timeout: 30 * time.Second})
	provider, err := oidc.NewProvider(ctx, env.IssuerURL())
	if err != nil {
		t.Fatalf("go-oidc: discovery of %s: %v", env.IssuerURL(), err)
	}
	return &interopRP{
		t:        t,
		env:      env,
		ctx:      ctx,
		provider: provider,
		conf: oauth2.Config{
			ClientID:     appID,
			ClientSecret: appSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  appRedirect,
			Scopes:       scopes,
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: appID}),
	}
}

// sub returns the relying party for subtest t, so that its helpers fail t.
func (rp *interopRP) sub(t *testing.T) *interopRP {
	c := *rp
	c.t = t
	return &c
}

// signIn drives browser through the RP's authorization URL (state, nonce,
// PKCE S256) and exchanges the code; it returns the token and the nonce.
func (rp *interopRP) signIn(browser *http.Client) (*oauth2.Token, string) {
	rp.t.Helper()
	state, nonce, pkce := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	authURL := rp.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce))
	resp := rp.env.Get(browser, authURL)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) ||
		loc.Scheme+"://"+loc.Host+loc.Path != appRedirect {
		rp.t.Fatalf("authorize: got %d Location %q at %s, want a redirect to %s:\n%s", resp.StatusCode, resp.Header.Get("Location"), resp.URL, appRedirect, resp.Body)
	}
	q := loc.Query()
	if q.Get("state") != state {
		rp.t.Fatalf("authorize: state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		rp.t.Fatalf("authorize: no code: error=%q %q", q.Get("error"), q.Get("error_description"))
	}
	tok, err := rp.conf.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		rp.t.Fatalf("oauth2: exchange: %v", err)
	}
	return tok, nonce
}

// idToken verifies the id_token of tok.
func (rp *interopRP) idToken(tok *oauth2.Token) (*oidc.IDToken, string) {
	rp.t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		rp.t.Fatalf("token response has no id_token")
	}
	id, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		rp.t.Fatalf("go-oidc: verify ID token: %v", err)
	}
	return id, raw
}

func TestInteropGoOIDC(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, protocolClients())
	browser := env.SignUp(adaEmail, adaName, adaPassword)
	rp := newInteropRP(t, env, oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess)

	tok, nonce := rp.signIn(browser)
	if !tok.Valid() || tok.TokenType != "Bearer" {
		t.Errorf("oauth2 token: valid=%t type %q, want a valid Bearer token", tok.Valid(), tok.TokenType)
	}
	if tok.RefreshToken == "" {
		t.Fatalf("no refresh token for offline_access")
	}
	idToken, rawID := rp.idToken(tok)

	if idToken.Issuer != env.IssuerURL() {
		t.Errorf("iss = %q, want %q", idToken.Issuer, env.IssuerURL())
	}
	if idToken.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", idToken.Nonce, nonce)
	}
	if !slices.Contains(idToken.Audience, appID) {
		t.Errorf("aud = %v, want it to contain %s", idToken.Audience, appID)
	}
	var claims interopClaims
	if err := idToken.Claims(&claims); err != nil {
		t.Fatalf("ID token claims: %v", err)
	}
	if claims.Email != adaEmail || claims.Name != adaName || claims.AZP != appID {
		t.Errorf("ID token email/name/azp = %q/%q/%q, want %q/%q/%q", claims.Email, claims.Name, claims.AZP, adaEmail, adaName, appID)
	}
	if !slices.Equal(claims.Roles, []string{"admin"}) {
		t.Errorf("ID token roles = %v, want [admin]", claims.Roles)
	}
	if claims.EmailVerified != nil && *claims.EmailVerified {
		t.Errorf("ID token email_verified = true; latchkey never verifies addresses")
	}
	if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("go-oidc: at_hash does not match the access token: %v", err)
	}
	me, status := env.Me(browser)
	if status != http.StatusOK || me.Subject != idToken.Subject {
		t.Errorf("ID token sub %q, the backend's subject for the same browser %q (status %d)", idToken.Subject, me.Subject, status)
	}

	info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc: userinfo: %v", err)
	}
	if info.Subject != idToken.Subject || info.Email != claims.Email {
		t.Errorf("userinfo sub/email = %q/%q, want the ID token's %q/%q", info.Subject, info.Email, idToken.Subject, claims.Email)
	}
	var infoClaims interopClaims
	if err := info.Claims(&infoClaims); err != nil {
		t.Fatalf("userinfo claims: %v", err)
	}
	if !slices.Equal(infoClaims.Roles, []string{"admin"}) {
		t.Errorf("userinfo roles = %v, want [admin]", infoClaims.Roles)
	}

	t.Run("ID token for another audience is refused", func(t *testing.T) {
		if _, err := rp.provider.Verifier(&oidc.Config{ClientID: "someone-else"}).Verify(rp.ctx, rawID); err == nil {
			t.Errorf("go-oidc accepted an ID token of %s for client someone-else", appID)
		}
	})
	t.Run("tampered ID token is refused", func(t *testing.T) {
		tampered := []byte(rawID)
		i := len(tampered) - 5 // inside the signature
		tampered[i] ^= 'A' ^ 'B'
		if tampered[i] == rawID[i] {
			t.Fatal("tampering did not change the token")
		}
		if _, err := rp.verifier.Verify(rp.ctx, string(tampered)); err == nil {
			t.Errorf("go-oidc accepted an ID token with a modified signature")
		}
	})

	t.Run("refresh through an oauth2.TokenSource", func(t *testing.T) {
		rp := rp.sub(t)
		stale := &oauth2.Token{
			AccessToken:  tok.AccessToken,
			TokenType:    tok.TokenType,
			RefreshToken: tok.RefreshToken,
			Expiry:       time.Now().Add(-time.Hour), // expired: the source must refresh
		}
		fresh, err := rp.conf.TokenSource(rp.ctx, stale).Token()
		if err != nil {
			t.Fatalf("oauth2: refresh: %v", err)
		}
		if !fresh.Valid() || fresh.AccessToken == tok.AccessToken {
			t.Errorf("refresh returned valid=%t, same access token=%t; want a new valid token", fresh.Valid(), fresh.AccessToken == tok.AccessToken)
		}
		if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
			t.Errorf("refresh token not rotated (old %q, new %q)", tok.RefreshToken, fresh.RefreshToken)
		}
		refreshedID, _ := rp.idToken(fresh)
		var rc interopClaims
		if err := refreshedID.Claims(&rc); err != nil {
			t.Fatalf("refreshed ID token claims: %v", err)
		}
		// OpenID Connect Core §12.2: same iss, sub, aud; auth_time of the original sign-in.
		if refreshedID.Subject != idToken.Subject || refreshedID.Issuer != idToken.Issuer || rc.AuthTime != claims.AuthTime {
			t.Errorf("refreshed ID token iss/sub/auth_time = %s/%s/%d, want %s/%s/%d",
				refreshedID.Issuer, refreshedID.Subject, rc.AuthTime, idToken.Issuer, idToken.Subject, claims.AuthTime)
		}
		if err := refreshedID.VerifyAccessToken(fresh.AccessToken); err != nil {
			t.Errorf("refreshed ID token at_hash does not match: %v", err)
		}
		info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(fresh))
		if err != nil {
			t.Fatalf("go-oidc: userinfo with the refreshed token: %v", err)
		}
		if info.Subject != idToken.Subject || info.Email != adaEmail {
			t.Errorf("userinfo after refresh sub/email = %q/%q, want %q/%q", info.Subject, info.Email, idToken.Subject, adaEmail)
		}

		// The rotated-out refresh token is spent for this client too.
		if _, err := rp.conf.TokenSource(rp.ctx, stale).Token(); err == nil {
			t.Errorf("oauth2: refreshing with the rotated-out refresh token succeeded")
		}
	})
}

// A public client (no secret) through the same independent library: PKCE
// is its only proof, and AuthStyle auto-detection must not need a secret.
func TestInteropGoOIDCPublicClient(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, protocolClients())
	browser := env.SignUp(adaEmail, adaName, adaPassword)
	rp := newInteropRP(t, env, oidc.ScopeOpenID, "email")
	rp.conf.ClientID, rp.conf.ClientSecret = cliID, ""
	rp.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	rp.verifier = rp.provider.Verifier(&oidc.Config{ClientID: cliID})

	tok, nonce := rp.signIn(browser)
	id, _ := rp.idToken(tok)
	if id.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", id.Nonce, nonce)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Email != adaEmail || info.Subject != id.Subject {
		t.Errorf("userinfo sub/email = %q/%q, want %q/%q", info.Subject, info.Email, id.Subject, adaEmail)
	}
}
