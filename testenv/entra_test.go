package testenv_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/testenv"
)

// entraSecret is long enough to be an HS256 key, so the test of a token
// signed with the client secret is about the algorithm, not the key size.
const entraSecret = "backend-secret-0123456789-abcdefghijklmnop"

// otherTenant is a second tenant that multi-tenant tests admit.
const otherTenant = "0f0e0d0c-0b0a-0908-0706-050403020100"

// entraEnv starts a fake Entra ID and a backend in OIDC mode against it;
// multi-tenant discovery admits the fake's tenant and otherTenant.
func entraEnv(t *testing.T, tenant string, opts ...testenv.Option) (*testenv.Entra, *testenv.Env) {
	t.Helper()
	entra := testenv.NewEntra(t)
	base := []testenv.Option{testenv.WithOIDC(entra.DiscoveryURL(tenant), "backend-app", entraSecret)}
	if tenant == "common" || tenant == "organizations" {
		base = append(base, testenv.WithConfig(func(c *server.Config) { c.OIDC.AllowedTenants = []string{entra.TenantID, otherTenant} }))
	}
	env := testenv.New(t, append(base, opts...)...)
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: entraSecret, RedirectURIs: []string{env.RedirectURL()},
		PostLogoutRedirectURIs: []string{env.URL + "/"}})
	return entra, env
}

// signIn runs a backend login against the external provider.
func signIn(t *testing.T, env *testenv.Env) (*http.Client, *testenv.Response) {
	t.Helper()
	c := env.Client()
	return c, env.Get(c, "/api/v1/auth/login")
}

func TestEntraSingleTenantSignIn(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{ObjectID: "11111111-2222-3333-4444-555555555555", PreferredUsername: "ada@contoso.onmicrosoft.com",
		Email: "ada@contoso.com", Name: "Ada", Roles: []string{"admin"}, Groups: []string{"g1", "g2"}})
	c, page := signIn(t, env)
	if page.StatusCode != http.StatusOK || page.URL.Path != "/" {
		t.Fatalf("sign-in ended at %s %d:\n%s", page.URL, page.StatusCode, page.Body)
	}
	id, status := env.Me(c)
	if status != http.StatusOK {
		t.Fatalf("me: %d", status)
	}
	want := "entra:" + entra.TenantID + "/11111111-2222-3333-4444-555555555555"
	if id.Key != want || id.Issuer != entra.Issuer(entra.TenantID) || id.Email != "ada@contoso.com" || !id.HasRole("admin") || len(id.Groups) != 2 || id.TenantID != entra.TenantID {
		t.Errorf("identity = %+v, want key %s", id, want)
	}
	if env.Server().BuiltIn() {
		t.Error("OIDC mode still runs the built-in issuer")
	}
	if r := env.Get(c, "/oidc/.well-known/openid-configuration"); r.StatusCode != http.StatusNotFound {
		t.Errorf("built-in issuer answers in OIDC mode: %d", r.StatusCode)
	}
}

func TestEntraMultiTenantTemplateIssuer(t *testing.T) {
	for _, tenant := range []string{"common", "organizations"} {
		t.Run(tenant, func(t *testing.T) {
			entra, env := entraEnv(t, tenant)
			other := otherTenant
			entra.SetUser(testenv.EntraUser{TenantID: other, PreferredUsername: "bob@fabrikam.com", Email: "bob@fabrikam.com", Name: "Bob"})
			c, page := signIn(t, env)
			id, status := env.Me(c)
			if status != http.StatusOK || id.Issuer != entra.Issuer(other) || !strings.HasPrefix(id.Key, "entra:"+other+"/") {
				t.Fatalf("multi-tenant sign-in: %d %+v; page %s:\n%s", status, id, page.URL, page.Body)
			}
			// tid must be a GUID for the template to be resolved.
			entra.SetClaimsHook(func(c map[string]any) { c["tid"] = "not-a-guid"; c["iss"] = entra.URL + "/not-a-guid/v2.0" })
			c2, page := signIn(t, env)
			if page.StatusCode != http.StatusUnauthorized || !strings.Contains(page.Body, "not a tenant GUID") {
				t.Errorf("non-GUID tid: %d\n%s", page.StatusCode, page.Body)
			}
			if _, status := env.Me(c2); status != http.StatusUnauthorized {
				t.Errorf("signed in with a non-GUID tid")
			}
			// A tenant outside allowedTenants is refused.
			entra.SetClaimsHook(nil)
			stranger := "11111111-2222-3333-4444-555555555555"
			entra.SetUser(testenv.EntraUser{TenantID: stranger, PreferredUsername: "eve@evil.example", Email: "eve@evil.example"})
			c3, page := signIn(t, env)
			if signedIn(env, c3) || !strings.Contains(page.Body, "not in config.authentication.oidc.allowedTenants") {
				t.Errorf("a tenant outside allowedTenants: %d\n%s", page.StatusCode, page.Body)
			}
			entra.SetUser(testenv.EntraUser{TenantID: other, PreferredUsername: "bob@fabrikam.com", Email: "bob@fabrikam.com", Name: "Bob"})
			// A token of tenant A claiming the issuer of tenant B is refused.
			entra.SetClaimsHook(func(c map[string]any) { c["iss"] = entra.URL + "/" + entra.TenantID + "/v2.0" })
			_, page = signIn(t, env)
			if page.StatusCode != http.StatusUnauthorized || !strings.Contains(page.Body, "is not the expected issuer") {
				t.Errorf("issuer of another tenant: %d\n%s", page.StatusCode, page.Body)
			}
		})
	}
}

func TestEntraMissingEmailFallsBackToPreferredUsername(t *testing.T) {
	entra, env := entraEnv(t, "", testenv.WithValidEmailDomain("contoso.com"))
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Name: "Ada"})
	c, _ := signIn(t, env)
	id, status := env.Me(c)
	if status != http.StatusOK || id.Email != "ada@contoso.com" || id.EmailVerified || id.EmailSource != "preferred_username" {
		t.Fatalf("fallback identity: %d %+v", status, id)
	}
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.onmicrosoft.com", Name: "Ada"})
	_, page := signIn(t, env)
	if page.StatusCode != http.StatusForbidden || !strings.Contains(page.Body, "no email claim") || !strings.Contains(page.Body, "@contoso.com") {
		t.Errorf("refusal does not say why: %d\n%s", page.StatusCode, page.Body)
	}
	verified := true
	entra.SetUser(testenv.EntraUser{PreferredUsername: "x@contoso.onmicrosoft.com", Email: "ada@contoso.com", EmailDomainVerified: &verified})
	c, _ = signIn(t, env)
	if id, _ := env.Me(c); !id.EmailVerified || id.EmailSource != "" {
		t.Errorf("xms_edov=true email: %+v", id)
	}
}

// TestForeignTenantCannotClaimTheDomain: in a multi-tenant setup, a
// tenant's admin can give a user any email; without xms_edov it proves
// nothing, so validEmailDomain refuses it.
func TestForeignTenantCannotClaimTheDomain(t *testing.T) {
	entra, env := entraEnv(t, "organizations", testenv.WithValidEmailDomain("contoso.com"))
	unverified := false
	entra.SetUser(testenv.EntraUser{TenantID: otherTenant, PreferredUsername: "mallory@fabrikam.com", Email: "ceo@contoso.com",
		EmailDomainVerified: &unverified, Roles: []string{"admin"}})
	c, page := signIn(t, env)
	if signedIn(env, c) || page.StatusCode != http.StatusForbidden || !strings.Contains(page.Body, "did not mark ceo@contoso.com as verified") {
		t.Errorf("a foreign tenant's unverified @contoso.com email: %d\n%s", page.StatusCode, page.Body)
	}
	verified := true
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com", EmailDomainVerified: &verified})
	if c, page := signIn(t, env); !signedIn(env, c) {
		t.Errorf("a verified @contoso.com email: %d\n%s", page.StatusCode, page.Body)
	}
}

func TestEntraGroupsOverageDoesNotFailSignIn(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com", GroupsOverage: true})
	c, _ := signIn(t, env)
	if id, status := env.Me(c); status != http.StatusOK || len(id.Groups) != 0 {
		t.Errorf("overage sign-in: %d %+v", status, id)
	}
}

func TestEntraKeyRollover(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	entra, env := entraEnv(t, "", testenv.WithClock(clock))
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	if c, _ := signIn(t, env); !signedIn(env, c) {
		t.Fatal("first sign-in failed")
	}
	entra.RotateKey(false) // the cached JWKS no longer has the signing key
	// Within a minute of the last fetch an unknown kid does not refetch the
	// JWKS (forged kids cannot hammer the provider)...
	if c, page := signIn(t, env); signedIn(env, c) || !strings.Contains(page.Body, "is not in the JWKS") {
		t.Errorf("JWKS refetched within a minute: %d\n%s", page.StatusCode, page.Body)
	}
	// ...after it, the unknown kid refreshes the keys and the sign-in works.
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	entra.SetClockSkew(61 * time.Second)
	if c, page := signIn(t, env); !signedIn(env, c) {
		t.Errorf("sign-in after key rollover: %d\n%s", page.StatusCode, page.Body)
	}
	// A newly announced key (old one kept) works the same way.
	entra.RotateKey(true)
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	entra.SetClockSkew(122 * time.Second)
	if c, page := signIn(t, env); !signedIn(env, c) {
		t.Errorf("sign-in with a newly announced key: %d\n%s", page.StatusCode, page.Body)
	}
}

func TestEntraClockSkew(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	cases := []struct {
		name string
		skew time.Duration // of the provider's clock; tokens live one hour
		ok   bool
		why  string
	}{
		{"provider 4 minutes ahead", 4 * time.Minute, true, ""},
		{"expired 4 minutes ago", -64 * time.Minute, true, ""},
		{"provider 10 minutes ahead", 10 * time.Minute, false, "issued in the future"},
		{"expired 10 minutes ago", -70 * time.Minute, false, "expired"},
	}
	for _, tc := range cases {
		entra.SetClockSkew(tc.skew)
		c, page := signIn(t, env)
		if signedIn(env, c) != tc.ok || !strings.Contains(page.Body, tc.why) {
			t.Errorf("%s: signed in %v, want %v (%q):\n%s", tc.name, !tc.ok, tc.ok, tc.why, page.Body)
		}
	}
}

func TestEntraV1TokenExplainsManifestSetting(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetV1Tokens(true)
	c, page := signIn(t, env)
	if signedIn(env, c) || !strings.Contains(page.Body, "accessTokenAcceptedVersion") {
		t.Errorf("v1 token: %d\n%s", page.StatusCode, page.Body)
	}
}

func TestEntraClientSecretPostOnly(t *testing.T) {
	entra := testenv.NewEntra(t, testenv.WithEntraAuthMethods("client_secret_post"))
	env := testenv.New(t, testenv.WithOIDC(entra.DiscoveryURL(""), "backend-app", entraSecret))
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: entraSecret, RedirectURIs: []string{env.RedirectURL()}})
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	if c, page := signIn(t, env); !signedIn(env, c) {
		t.Errorf("client_secret_post provider: %d\n%s", page.StatusCode, page.Body)
	}
}

func TestEntraLogoutGoesToEndSession(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	c, _ := signIn(t, env)
	r := env.Logout(c)
	if r.URL.Path != "/" || r.URL.Host != strings.TrimPrefix(env.URL, "http://") || r.StatusCode != http.StatusOK {
		t.Errorf("logout ended at %s (%d)", r.URL, r.StatusCode)
	}
	if n := entra.LogoutRequests(); n != 1 {
		t.Errorf("the provider's end_session_endpoint saw %d sign-outs, want 1", n)
	}
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("still signed in after logout")
	}
}

func signedIn(env *testenv.Env, c *http.Client) bool {
	_, status := env.Me(c)
	return status == http.StatusOK
}

func TestEntraQueuedUsersSignInInOrder(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "default@contoso.com", Email: "default@contoso.com"})
	entra.QueueUser(testenv.EntraUser{PreferredUsername: "first@contoso.com", Email: "first@contoso.com"})
	entra.QueueUser(testenv.EntraUser{PreferredUsername: "second@contoso.com", Email: "second@contoso.com"})
	for _, want := range []string{"first@contoso.com", "second@contoso.com", "default@contoso.com"} {
		c, _ := signIn(t, env)
		if id, _ := env.Me(c); id.Email != want {
			t.Errorf("signed in as %q, want %q", id.Email, want)
		}
	}
}

// TestRelyingPartyConformance runs the ID token checks of OpenID Connect
// Core §3.1.3.7 through a real sign-in: every broken token is refused with
// a reason, and the two legitimate variations are accepted.
func TestRelyingPartyConformance(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	del := func(k string) func(map[string]any) { return func(c map[string]any) { delete(c, k) } }
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	cases := []struct {
		name    string
		signing testenv.EntraSigning
		hook    func(map[string]any)
		ok      bool
		why     string
	}{
		{"valid", testenv.SignRS256, nil, true, ""},
		{"no kid, single key in JWKS", testenv.SignNoKid, nil, true, ""},
		{"bad signature", testenv.SignBadSignature, nil, false, "bad signature"},
		{"alg none", testenv.SignNone, nil, false, `"none" is not accepted`},
		{"HS256 with the client secret", testenv.SignHS256Secret, nil, false, `"HS256" is not accepted`},
		{"key not in JWKS", testenv.SignUnknownKey, nil, false, "is not in the JWKS"},
		{"wrong iss", testenv.SignRS256, set("iss", "https://evil.example/v2.0"), false, "is not the expected issuer"},
		{"wrong aud", testenv.SignRS256, set("aud", "another-app"), false, "does not contain the client ID"},
		{"extra aud without azp", testenv.SignRS256, set("aud", []string{"backend-app", "another-app"}), false, "azp"},
		{"missing sub", testenv.SignRS256, del("sub"), false, "sub is missing"},
		{"missing iat", testenv.SignRS256, del("iat"), false, "iat is missing"},
		{"missing exp", testenv.SignRS256, del("exp"), false, "exp is missing"},
		{"wrong nonce", testenv.SignRS256, set("nonce", "not-the-nonce"), false, "nonce"},
		{"missing nonce", testenv.SignRS256, del("nonce"), false, "nonce"},
		{"expired", testenv.SignRS256, set("exp", time.Now().Add(-10*time.Minute).Unix()), false, "expired"},
		{"issued in the future", testenv.SignRS256, set("iat", time.Now().Add(10*time.Minute).Unix()), false, "issued in the future"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entra.SetSigning(tc.signing)
			entra.SetClaimsHook(tc.hook)
			c, page := signIn(t, env)
			if got := signedIn(env, c); got != tc.ok {
				t.Fatalf("signed in = %v, want %v:\n%s", got, tc.ok, page.Body)
			}
			if !tc.ok && (page.StatusCode != http.StatusUnauthorized || !strings.Contains(page.Body, html.EscapeString(tc.why))) {
				t.Errorf("refusal %d does not say %q:\n%s", page.StatusCode, tc.why, page.Body)
			}
		})
	}
}

func TestTokenWithoutKidAndTwoKeysIsRefused(t *testing.T) {
	entra, env := entraEnv(t, "")
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	entra.RotateKey(true) // two keys in the JWKS: a token without kid is ambiguous
	entra.SetSigning(testenv.SignNoKid)
	c, page := signIn(t, env)
	if signedIn(env, c) || !strings.Contains(page.Body, "no kid") {
		t.Errorf("no kid with two keys accepted or unexplained:\n%s", page.Body)
	}
}

func TestUserinfoAboutAnotherSubjectIsRefused(t *testing.T) {
	entra, env := entraEnv(t, "")
	// No email in the ID token: the relying party asks userinfo, whose sub
	// must then be the ID token's (OpenID Connect Core §5.3.2).
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Name: ""})
	entra.SetClaimsHook(func(c map[string]any) { c["sub"] = "someone-else" })
	c, page := signIn(t, env)
	if signedIn(env, c) || page.StatusCode != http.StatusBadGateway || !strings.Contains(page.Body, "sub differs") {
		t.Errorf("userinfo of another subject: %d\n%s", page.StatusCode, page.Body)
	}
	entra.SetClaimsHook(nil)
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com", Name: "Ada"})
	entra.SetClaimsHook(func(c map[string]any) { delete(c, "email"); delete(c, "name") })
	c, _ = signIn(t, env)
	if id, _ := env.Me(c); id.Email != "ada@contoso.com" || id.Name != "Ada" || id.EmailSource != "" {
		t.Errorf("claims from userinfo not merged: %+v", id)
	}
}

// TestSessionsOfAnotherProviderEndAtTheSwap: after switching the backend
// from the built-in issuer to Entra ID, sessions the built-in issuer
// vouched for are no longer accepted (and back).
func TestSessionsOfAnotherProviderEndAtTheSwap(t *testing.T) {
	env := testenv.New(t)
	builtIn := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	u, _ := url.Parse(env.URL)
	saved := builtIn.Jar.Cookies(u)
	entra := testenv.NewEntra(t)
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: entraSecret, RedirectURIs: []string{env.RedirectURL()}})
	entra.SetUser(testenv.EntraUser{PreferredUsername: "ada@contoso.com", Email: "ada@contoso.com"})
	env.Restart(testenv.WithOIDC(entra.DiscoveryURL(""), "backend-app", entraSecret))
	env.FollowRedirectsTo(entra.URL)
	if _, status := env.Me(builtIn); status != http.StatusUnauthorized {
		t.Errorf("a built-in issuer's session after the swap to Entra: %d, want 401", status)
	}
	c, _ := signIn(t, env)
	entraCookies := c.Jar.Cookies(u)
	if !signedIn(env, c) {
		t.Fatal("Entra sign-in after the swap failed")
	}
	env.Restart(testenv.WithConfig(func(cfg *server.Config) { cfg.OIDC.Enabled, cfg.BasicAuth.Enabled = false, true }))
	c.Jar.SetCookies(u, entraCookies)
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("an Entra session after swapping back: %d, want 401", status)
	}
	builtIn.Jar.SetCookies(u, saved)
	if _, status := env.Me(builtIn); status != http.StatusOK {
		t.Errorf("the built-in issuer's own session after swapping back: %d, want 200", status)
	}
}
