package rp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// DiscoverySuffix ends every OpenID Connect discovery URL.
const DiscoverySuffix = "/.well-known/openid-configuration"

// ErrDiscovery is wrapped by every reason a discovery document is refused.
var ErrDiscovery = errors.New("rp: discovery failed")

// Discovery is the part of a provider's discovery document latchkey uses.
type Discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
}

// FetchDiscovery reads the discovery document at discoveryURL.
func FetchDiscovery(ctx context.Context, client *http.Client, discoveryURL string) (*Discovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discoveryURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDiscovery, discoveryURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach %s: %v", ErrDiscovery, discoveryURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered HTTP %d", ErrDiscovery, discoveryURL, resp.StatusCode)
	}
	var d Discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON discovery document: %v", ErrDiscovery, discoveryURL, err)
	}
	return &d, nil
}

// Check validates a discovery document fetched from discoveryURL. It
// returns notes worth telling a person (for example how an Entra ID issuer
// template is resolved).
func (d *Discovery) Check(discoveryURL string) (notes []string, err error) {
	var problems []string
	for name, v := range map[string]string{
		"issuer": d.Issuer, "authorization_endpoint": d.AuthorizationEndpoint, "token_endpoint": d.TokenEndpoint,
		"userinfo_endpoint": d.UserinfoEndpoint, "jwks_uri": d.JWKSURI,
	} {
		if v == "" {
			problems = append(problems, name+" is missing")
		}
	}
	if len(d.ScopesSupported) > 0 {
		for _, s := range []string{"openid", "profile", "email"} {
			if !slices.Contains(d.ScopesSupported, s) {
				problems = append(problems, "scopes_supported lacks "+s)
			}
		}
	}
	if len(d.IDTokenSigningAlgValuesSupported) > 0 && !slices.Contains(d.IDTokenSigningAlgValuesSupported, string(jose.RS256)) {
		problems = append(problems, fmt.Sprintf("id_token_signing_alg_values_supported %v lacks RS256", d.IDTokenSigningAlgValuesSupported))
	}
	if _, err := d.authStyle(); err != nil {
		problems = append(problems, err.Error())
	}
	if d.Issuer != "" {
		note, err := issuerMatches(strings.TrimSuffix(discoveryURL, DiscoverySuffix), d.Issuer)
		if err != nil {
			problems = append(problems, err.Error())
		} else if note != "" {
			notes = append(notes, note)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return notes, fmt.Errorf("%w: %s: %s", ErrDiscovery, discoveryURL, strings.Join(problems, "; "))
	}
	return notes, nil
}

// TokenAuthMethod is how the relying party authenticates at the token
// endpoint: client_secret_basic when the provider offers it (or lists no
// methods, since it is then the default), else client_secret_post.
func (d *Discovery) TokenAuthMethod() (string, error) {
	m := d.TokenEndpointAuthMethodsSupported
	switch {
	case len(m) == 0 || slices.Contains(m, "client_secret_basic"):
		return "client_secret_basic", nil
	case slices.Contains(m, "client_secret_post"):
		return "client_secret_post", nil
	}
	return "", fmt.Errorf("token_endpoint_auth_methods_supported %v offers neither client_secret_basic nor client_secret_post", m)
}

// authStyle is TokenAuthMethod in x/oauth2's terms.
func (d *Discovery) authStyle() (oauth2.AuthStyle, error) {
	method, err := d.TokenAuthMethod()
	if method == "client_secret_post" {
		return oauth2.AuthStyleInParams, err
	}
	return oauth2.AuthStyleInHeader, err
}

// FetchJWKS reads the JSON Web Key Set at url (at most 1 MiB), as
// published: private members, if a provider wrongly publishes them, are
// the caller's to notice.
func FetchJWKS(ctx context.Context, client *http.Client, url string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return set, fmt.Errorf("rp: JWKS request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return set, fmt.Errorf("rp: cannot reach the JWKS at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("rp: the JWKS at %s answered HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return set, fmt.Errorf("rp: %s is not a JSON Web Key Set: %w", url, err)
	}
	return set, nil
}

// issuerMatches checks the issuer against the discovery URL's base: equal,
// or an Entra ID issuer whose tenant segment is the {tenantid} template
// (multi-tenant discovery: common, organizations) or the tenant's GUID
// (discovery by domain name).
func issuerMatches(base, issuer string) (string, error) {
	if strings.TrimSuffix(issuer, "/") == strings.TrimSuffix(base, "/") {
		return "", nil
	}
	b, errB := url.Parse(base)
	i, errI := url.Parse(strings.ReplaceAll(issuer, tenantTemplate, "TENANTID"))
	mismatch := fmt.Errorf("issuer %q does not match the discovery URL's base %q", issuer, base)
	if errB != nil || errI != nil || !strings.EqualFold(b.Host, i.Host) {
		return "", mismatch
	}
	bs := strings.Split(strings.Trim(b.Path, "/"), "/")
	is := strings.Split(strings.Trim(i.Path, "/"), "/")
	if len(bs) != len(is) || len(bs) == 0 || !slices.Equal(bs[1:], is[1:]) {
		return "", mismatch
	}
	switch {
	case is[0] == "TENANTID":
		return fmt.Sprintf("multi-tenant issuer template %s: each token's tid is substituted and must then match exactly", issuer), nil
	case guidRe.MatchString(is[0]) && !guidRe.MatchString(bs[0]):
		return fmt.Sprintf("tenant %q is tenant ID %s", bs[0], is[0]), nil
	}
	return "", mismatch
}

// SuggestDiscoveryURL returns the discovery URL that raw most likely meant,
// or "" when it cannot tell.
func SuggestDiscoveryURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimSuffix(u.Path, "/")
	// Entra ID endpoints pasted from the portal's "Endpoints" pane.
	for _, tail := range []string{"/oauth2/v2.0/authorize", "/oauth2/v2.0/token", "/oauth2/authorize", "/oauth2/token", "/v2.0/.well-known/openid-configuration/", "/discovery/v2.0/keys"} {
		if strings.HasSuffix(p, tail) {
			p = strings.TrimSuffix(p, tail)
			if strings.Contains(tail, "v2.0") {
				p += "/v2.0"
			}
			break
		}
	}
	p = strings.TrimSuffix(p, "/.well-known/openid-configuration")
	p = strings.TrimSuffix(p, "/.well-known")
	u.Path = p + DiscoverySuffix
	return u.String()
}
