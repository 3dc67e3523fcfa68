package rp

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key set refresh policy: an unknown kid refreshes the cached JWKS at most
// once per minRefresh (so forged kids cannot hammer the provider), and the
// cache is refreshed at least every maxAge.
const (
	minRefresh = time.Minute
	maxAge     = 24 * time.Hour
)

// errUnknownKey is returned when no key of the provider matches a token.
var errUnknownKey = errors.New("rp: no key of the identity provider matches the token")

// keySet caches a provider's JWKS.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now}
}

// key returns the verification key for a token's header: by kid, or, for a
// token without kid, the single key of the set usable with alg.
func (k *keySet) key(ctx context.Context, kid, alg string) (jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	// Refresh a missing or day-old set, but never more than once a minute:
	// a provider whose JWKS is down does not make every sign-in wait.
	if (k.fetched.IsZero() || now.Sub(k.fetched) > maxAge) && now.Sub(k.attempted) >= minRefresh {
		if err := k.refreshLocked(ctx); err != nil && len(k.keys) == 0 {
			return jose.JSONWebKey{}, err
		}
	}
	if key, ok := k.findLocked(kid, alg); ok {
		return key, nil
	}
	// Unknown kid: the provider may have rolled its keys over.
	if now.Sub(k.attempted) >= minRefresh {
		if err := k.refreshLocked(ctx); err != nil {
			return jose.JSONWebKey{}, err
		}
		if key, ok := k.findLocked(kid, alg); ok {
			return key, nil
		}
	}
	if kid == "" {
		return jose.JSONWebKey{}, fmt.Errorf("%w: the token has no kid and the JWKS does not have exactly one %s key", errUnknownKey, alg)
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: kid %q is not in the JWKS at %s", errUnknownKey, kid, k.url)
}

func (k *keySet) findLocked(kid, alg string) (jose.JSONWebKey, bool) {
	var candidates []jose.JSONWebKey
	for _, key := range k.keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != alg {
			continue
		}
		if kid != "" {
			if key.KeyID == kid {
				return key, true
			}
			continue
		}
		if keyFitsAlg(key, alg) {
			candidates = append(candidates, key)
		}
	}
	if kid == "" && len(candidates) == 1 {
		return candidates[0], true
	}
	return jose.JSONWebKey{}, false
}

// keyFitsAlg reports whether a key's type can verify alg.
func keyFitsAlg(key jose.JSONWebKey, alg string) bool {
	switch key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	}
	return false
}

func (k *keySet) refreshLocked(ctx context.Context) error {
	k.attempted = k.now()
	set, err := FetchJWKS(ctx, k.client, k.url)
	if err != nil {
		return err
	}
	var public []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.IsPublic() && key.Valid() {
			public = append(public, key)
		}
	}
	if len(public) == 0 {
		return fmt.Errorf("rp: JWKS %s holds no usable public key", k.url)
	}
	k.keys, k.fetched = public, k.now()
	return nil
}

func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
