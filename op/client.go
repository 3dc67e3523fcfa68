package op

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// Client is an application registered with the built-in issuer.
//
// A client with a Secret is confidential: it authenticates at the token
// endpoint with client_secret_basic or client_secret_post. A client without
// one is public: it must use PKCE with S256, and, following RFC 8252, a
// loopback redirect URI may use any port.
type Client struct {
	ID                     string
	Secret                 string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// ErrUnknownClient is returned for a client_id that is not registered.
var ErrUnknownClient = errors.New("op: unknown client")

// errClientAuth is returned when a client secret does not match.
var errClientAuth = errors.New("op: client authentication failed")

// client adapts a Client to zitadel's op.Client.
type client struct {
	Client
	loginURL     func(id string) string
	idTokenLife  time.Duration
	secretDigest [sha256.Size]byte
	confidential bool
}

func newClient(c Client, loginURL func(string) string, idTokenLife time.Duration) (*client, error) {
	if c.ID == "" {
		return nil, errors.New("op: client with an empty client_id")
	}
	if len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("op: client %q: at least one redirect URI is required", c.ID)
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		p, err := url.Parse(u)
		if err != nil || !p.IsAbs() || p.Fragment != "" {
			return nil, fmt.Errorf("op: client %q: redirect URI %q must be an absolute URL without a fragment", c.ID, u)
		}
	}
	return &client{
		Client:       c,
		loginURL:     loginURL,
		idTokenLife:  idTokenLife,
		secretDigest: sha256.Sum256([]byte(c.Secret)),
		confidential: c.Secret != "",
	}, nil
}

// checkSecret compares secret with the client's in constant time (over
// digests, so the length of the real secret does not leak either).
func (c *client) checkSecret(secret string) bool {
	if !c.confidential {
		return false
	}
	d := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(d[:], c.secretDigest[:]) == 1
}

// GetID implements op.Client.
func (c *client) GetID() string { return c.ID }

// RedirectURIs implements op.Client.
func (c *client) RedirectURIs() []string { return c.Client.RedirectURIs }

// PostLogoutRedirectURIs implements op.Client.
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }

// ApplicationType implements op.Client: confidential clients are web
// applications; public ones are native (RFC 8252 rules for redirect URIs).
func (c *client) ApplicationType() zop.ApplicationType {
	if c.confidential {
		return zop.ApplicationTypeWeb
	}
	return zop.ApplicationTypeNative
}

// AuthMethod implements op.Client.
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.confidential {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}

// ResponseTypes implements op.Client: the authorization code flow only.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes implements op.Client.
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// LoginURL implements op.Client.
func (c *client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType implements op.Client: opaque bearer tokens, which cost no
// signature on the token path.
func (c *client) AccessTokenType() zop.AccessTokenType { return zop.AccessTokenTypeBearer }

// IDTokenLifetime implements op.Client.
func (c *client) IDTokenLifetime() time.Duration { return c.idTokenLife }

// DevMode implements op.Client.
func (c *client) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes implements op.Client.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes implements op.Client.
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed implements op.Client: besides the standard scopes, "roles"
// is accepted (roles are always sent; the scope exists for clients that ask).
func (c *client) IsScopeAllowed(scope string) bool { return scope == ScopeRoles }

// IDTokenUserinfoClaimsAssertion implements op.Client: the ID token carries
// the profile and email claims even when an access token is issued.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew implements op.Client.
func (c *client) ClockSkew() time.Duration { return 0 }
