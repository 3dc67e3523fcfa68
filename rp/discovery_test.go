package rp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestSuggestDiscoveryURL(t *testing.T) {
	const want = "https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration"
	for _, in := range []string{
		"https://login.microsoftonline.com/contoso.com/v2.0",
		"https://login.microsoftonline.com/contoso.com/v2.0/",
		"https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize",
		"https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token?x=1",
		"https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration/",
		"https://login.microsoftonline.com/contoso.com/v2.0/.well-known",
		"https://login.microsoftonline.com/contoso.com/discovery/v2.0/keys",
	} {
		if got := SuggestDiscoveryURL(in); got != want {
			t.Errorf("SuggestDiscoveryURL(%q) = %q", in, got)
		}
	}
	if got := SuggestDiscoveryURL("not a url"); got != "" {
		t.Errorf("garbage: %q", got)
	}
}

func validDoc(base string) *Discovery {
	return &Discovery{
		Issuer: base, AuthorizationEndpoint: base + "/authorize", TokenEndpoint: base + "/token",
		UserinfoEndpoint: base + "/userinfo", JWKSURI: base + "/keys",
		ScopesSupported: []string{"openid", "profile", "email"}, IDTokenSigningAlgValuesSupported: []string{"RS256"},
	}
}

func TestDiscoveryCheck(t *testing.T) {
	const base = "https://idp.example/tenant/v2.0"
	url := base + DiscoverySuffix
	cases := []struct {
		name   string
		mutate func(d *Discovery)
		want   string // "" = valid
	}{
		{"valid", func(*Discovery) {}, ""},
		{"no token endpoint", func(d *Discovery) { d.TokenEndpoint = "" }, "token_endpoint is missing"},
		{"no jwks", func(d *Discovery) { d.JWKSURI = "" }, "jwks_uri is missing"},
		{"no userinfo", func(d *Discovery) { d.UserinfoEndpoint = "" }, "userinfo_endpoint is missing"},
		{"scopes without email", func(d *Discovery) { d.ScopesSupported = []string{"openid", "profile"} }, "scopes_supported lacks email"},
		{"scopes not listed", func(d *Discovery) { d.ScopesSupported = nil }, ""},
		{"no RS256", func(d *Discovery) { d.IDTokenSigningAlgValuesSupported = []string{"ES256"} }, "lacks RS256"},
		{"only private_key_jwt", func(d *Discovery) { d.TokenEndpointAuthMethodsSupported = []string{"private_key_jwt"} }, "neither client_secret_basic nor client_secret_post"},
		{"other issuer", func(d *Discovery) { d.Issuer = "https://evil.example/tenant/v2.0" }, "does not match the discovery URL's base"},
		{"template issuer", func(d *Discovery) { d.Issuer = "https://idp.example/{tenantid}/v2.0" }, ""},
		{"template on another host", func(d *Discovery) { d.Issuer = "https://evil.example/{tenantid}/v2.0" }, "does not match"},
		{"template elsewhere in the path", func(d *Discovery) { d.Issuer = "https://idp.example/tenant/{tenantid}" }, "does not match"},
	}
	for _, tc := range cases {
		d := validDoc(base)
		tc.mutate(d)
		_, err := d.Check(url)
		if tc.want == "" && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	d := validDoc("https://login.microsoftonline.com/contoso.com/v2.0")
	d.Issuer = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
	notes, err := d.Check("https://login.microsoftonline.com/contoso.com/v2.0" + DiscoverySuffix)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "72f988bf") {
		t.Errorf("tenant by domain name: %v %v", notes, err)
	}
}

func TestAuthStyleFollowsDiscovery(t *testing.T) {
	for methods, want := range map[string]oauth2.AuthStyle{
		"":                                       oauth2.AuthStyleInHeader,
		"client_secret_post,client_secret_basic": oauth2.AuthStyleInHeader,
		"client_secret_post,private_key_jwt":     oauth2.AuthStyleInParams,
	} {
		d := &Discovery{}
		if methods != "" {
			d.TokenEndpointAuthMethodsSupported = strings.Split(methods, ",")
		}
		if got, err := d.authStyle(); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", methods, got, err, want)
		}
	}
}

func TestKeySetRefreshPolicy(t *testing.T) {
	var fetches atomic.Int32
	var keys atomic.Value
	keys.Store(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"` + testModulus + `","e":"AQAB"}]}`)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(keys.Load().(string)))
	}))
	defer ts.Close()
	now := time.Unix(1_800_000_000, 0)
	ks := newKeySet(ts.URL, ts.Client(), func() time.Time { return now })
	ctx := context.Background()
	if _, err := ks.key(ctx, "k1", "RS256"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := ks.key(ctx, "unknown", "RS256"); err == nil {
			t.Fatal("unknown kid found")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("unknown kids within a minute caused %d fetches, want 1", n)
	}
	now = now.Add(61 * time.Second)
	_, _ = ks.key(ctx, "unknown", "RS256")
	if n := fetches.Load(); n != 2 {
		t.Errorf("after a minute an unknown kid caused %d fetches in all, want 2", n)
	}
	if k, err := ks.key(ctx, "", "RS256"); err != nil || k.KeyID != "k1" {
		t.Errorf("no kid with a single key: %v %v", k.KeyID, err)
	}
	now = now.Add(25 * time.Hour)
	_, _ = ks.key(ctx, "k1", "RS256")
	if n := fetches.Load(); n != 3 {
		t.Errorf("a day-old JWKS was not refreshed (fetches %d, want 3)", n)
	}
}

// testModulus is a 2048-bit RSA modulus (base64url) for JWKS fixtures.
const testModulus = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
