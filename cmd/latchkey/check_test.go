package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/testenv"
)

func runCheck(t *testing.T, env map[string]string) (int, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run([]string{"check"}, &out, &errOut, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return code, out.String() + errOut.String()
}

func TestCheckBuiltInIssuer(t *testing.T) {
	dir := t.TempDir()
	code, out := runCheck(t, map[string]string{"LATCHKEY_DATA_DIR": filepath.Join(dir, "data")})
	if code != 0 {
		t.Fatalf("check exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"[ok]   discovery document reachable at http://localhost:8080/oidc/.well-known/openid-configuration",
		"[ok]   issuer: http://localhost:8080/oidc",
		"[ok]   ID token signing algorithms: RS256",
		"[ok]   JWKS: 1 key(s)",
		"[ok]   client credentials accepted by the token endpoint (client_secret_basic",
		"sign-in should work",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func entraCheckEnv(entra *testenv.Entra, discovery, secret string) map[string]string {
	return map[string]string{
		"LATCHKEY_BASIC_AUTH_ENABLED": "false", "LATCHKEY_OIDC_ENABLED": "true",
		"OIDC_DISCOVERY_URL": discovery, "OIDC_CLIENT_ID": "backend-app", "OIDC_CLIENT_SECRET": secret,
		"LATCHKEY_DATA_DIR": "unused-in-oidc-mode", "OIDC_ALLOWED_TENANTS": entra.TenantID,
	}
}

func TestCheckFakeEntra(t *testing.T) {
	entra := testenv.NewEntra(t)
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: "right-secret", RedirectURIs: []string{"http://localhost:8080/api/v1/auth/callback"}})
	t.Chdir(t.TempDir())

	code, out := runCheck(t, entraCheckEnv(entra, entra.DiscoveryURL("common"), "right-secret"))
	if code != 0 {
		t.Fatalf("check exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"[info] TLS: none: the provider is reached over plain http",
		"[ok]   discovery document valid",
		"{tenantid}/v2.0: each token's tid is substituted",
		"[ok]   ID token signing algorithms: RS256",
		"[ok]   JWKS: 1 key(s)",
		"[ok]   client credentials accepted by the token endpoint (client_secret_basic",
		"register this redirect URI with the provider: http://localhost:8080/api/v1/auth/callback",
		"sign-in should work",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "{tenantid}"); n != 2 { // the [ok] issuer line and its [info] explanation
		t.Errorf("the multi-tenant issuer is reported %d times, want the issuer line and one note:\n%s", n, out)
	}
	if _, err := os.Stat("unused-in-oidc-mode"); err == nil {
		t.Error("check in OIDC mode created a data directory")
	}

	code, out = runCheck(t, entraCheckEnv(entra, entra.DiscoveryURL(""), "wrong-secret"))
	if code == 0 || !strings.Contains(out, "[FAIL] client credentials refused by the token endpoint") {
		t.Errorf("wrong secret: exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "wrong-secret") || strings.Contains(out, "right-secret") {
		t.Errorf("the report shows a secret:\n%s", out)
	}

	entra.SetDown(true)
	code, out = runCheck(t, entraCheckEnv(entra, entra.DiscoveryURL(""), "right-secret"))
	if code == 0 || !strings.Contains(out, "[FAIL] discovery") || !strings.Contains(out, "HTTP 502") {
		t.Errorf("provider down: exit %d:\n%s", code, out)
	}
}

func TestCheckBadDiscoveryURLSuggestsFix(t *testing.T) {
	code, out := runCheck(t, map[string]string{
		"LATCHKEY_BASIC_AUTH_ENABLED": "false", "LATCHKEY_OIDC_ENABLED": "true",
		"OIDC_DISCOVERY_URL": "https://login.microsoftonline.com/contoso.com/v2.0", "OIDC_CLIENT_ID": "a", "OIDC_CLIENT_SECRET": "b",
	})
	if code == 0 || !strings.Contains(out, "you most likely meant https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestCheckVerifySSLOffWarns(t *testing.T) {
	entra := testenv.NewEntra(t)
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: "s", RedirectURIs: []string{"http://localhost:8080/api/v1/auth/callback"}})
	env := entraCheckEnv(entra, entra.DiscoveryURL(""), "s")
	env["OIDC_VERIFY_SSL"] = "false"
	code, out := runCheck(t, env)
	if code != 0 || !strings.Contains(out, "[warn] TLS: certificate verification is OFF") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestCheckClientSecretPostProvider(t *testing.T) {
	entra := testenv.NewEntra(t, testenv.WithEntraAuthMethods("client_secret_post"))
	entra.AddClient(testenv.EntraClient{ID: "backend-app", Secret: "right-secret", RedirectURIs: []string{"http://localhost:8080/api/v1/auth/callback"}})
	code, out := runCheck(t, entraCheckEnv(entra, entra.DiscoveryURL(""), "right-secret"))
	if code != 0 || !strings.Contains(out, "client credentials accepted by the token endpoint (client_secret_post") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestCheckWhileTheServerRuns: with the data directory held by a running
// latchkey, the check goes over the network and says what it skipped.
func TestCheckWhileTheServerRuns(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startServe(t, dir, addr)
	code, out := runCheck(t, map[string]string{
		"LATCHKEY_DATA_DIR":   filepath.Join(dir, "latchkey-data"),
		"LATCHKEY_PUBLIC_URL": "http://" + addr,
	})
	for _, want := range []string{
		"in use by a running latchkey; checking it over the network at http://" + addr,
		"[ok]   discovery document reachable at http://" + addr + "/oidc/.well-known/openid-configuration",
		"[ok]   JWKS: 1 key(s)",
		"client credentials not checked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
}
