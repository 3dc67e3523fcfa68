package op

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// BenchmarkSignRS256 is the baseline of the token endpoint: one RS256
// signature, which every ID token needs.
func BenchmarkSignRS256(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("payload"))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenEndpoint redeems authorization codes at the token endpoint
// (client authentication, PKCE check, access token, RS256 ID token), in
// process. Compare it with BenchmarkSignRS256 in the same run.
func BenchmarkTokenEndpoint(b *testing.B) {
	i, u := testIssuer(b)
	ctx := context.Background()
	const verifier = "a-verifier-of-at-least-forty-three-characters-long"
	challenge := oidc.NewSHACodeChallenge(verifier)
	codes := make([]string, 0, b.N)
	for range b.N {
		req := &oidc.AuthRequest{ClientID: "app", RedirectURI: "http://127.0.0.1:9/cb", ResponseType: oidc.ResponseTypeCode,
			Scopes: []string{"openid", "email"}, Nonce: "n", CodeChallenge: challenge, CodeChallengeMethod: oidc.CodeChallengeMethodS256}
		ar, err := i.store.CreateAuthRequest(ctx, req, "")
		if err != nil {
			b.Fatal(err)
		}
		if err := i.store.completeAuthRequest(ar.GetID(), u.ID, time.Now(), []string{"pwd"}, "s"); err != nil {
			b.Fatal(err)
		}
		code := "code-" + ar.GetID()
		if err := i.store.SaveAuthCode(ctx, ar.GetID(), code); err != nil {
			b.Fatal(err)
		}
		codes = append(codes, code)
	}
	b.ResetTimer()
	for n := range b.N {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[n]},
			"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_verifier": {verifier}}
		r := httptest.NewRequest(http.MethodPost, "http://localhost:8080/oidc/oauth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("app", "s3cret-s3cret")
		w := httptest.NewRecorder()
		i.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("token endpoint: %d %s", w.Code, w.Body.String())
		}
	}
}
