package testenv_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/testenv"
)

// TestUnreachableProviderDoesNotCrash starts the backend while the
// provider fails: the server starts, /api/v1/auth/login answers 503 saying
// what failed and when it retries, and sign-in works once the provider is
// back.
func TestUnreachableProviderDoesNotCrash(t *testing.T) {
	entra := testenv.NewEntra(t)
	entra.SetDown(true)
	env := testenv.New(t, testenv.WithOIDC(entra.DiscoveryURL(""), "backend-app", entraSecret))
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: entraSecret, RedirectURIs: []string{env.RedirectURL()}})
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})

	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login")
	if page.StatusCode != http.StatusServiceUnavailable || page.Header.Get("Retry-After") == "" ||
		!strings.Contains(page.Body, "HTTP 502") || !strings.Contains(page.Body, "next attempt at") {
		t.Fatalf("login while the provider is down: %d Retry-After %q\n%s", page.StatusCode, page.Header.Get("Retry-After"), page.Body)
	}
	entra.SetDown(false)
	select {
	case <-env.Server().RelyingParty().Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("discovery was not retried within 30 s")
	}
	if c, page := signIn(t, env); !signedIn(env, c) {
		t.Errorf("sign-in after the provider came back: %d\n%s", page.StatusCode, page.Body)
	}
}
