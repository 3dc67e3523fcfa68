package users

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// tokenBytes is the entropy of invitation and password reset tokens.
const tokenBytes = 32

// tokenLength is the length of an encoded token: tokenBytes in unpadded
// base64url.
var tokenLength = base64.RawURLEncoding.EncodedLen(tokenBytes)

// newToken returns a fresh secret token, tokenBytes random bytes in
// unpadded base64url, and its storage key.
func (s *Store) newToken() (token string, key []byte, err error) {
	var b [tokenBytes]byte
	if err := s.readRand(b[:]); err != nil {
		return "", nil, fmt.Errorf("generating token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	key, _ = tokenKey(token)
	return token, key, nil
}

// tokenKey returns the storage key of a secret token: its SHA-256 digest.
// Only the digest is stored, so a copy of the database holds no usable
// token, and lookups are by this exact key (never by prefix), so timing
// reveals nothing useful about stored tokens. ok is false if token cannot
// be one this package issued (wrong length), which callers treat like an
// unknown token.
func tokenKey(token string) (key []byte, ok bool) {
	if len(token) != tokenLength {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], true
}

// expired reports whether a token expiring at expiresAt is no longer valid
// at now. A token is valid strictly before its expiry.
func expired(expiresAt, now time.Time) bool {
	return !now.Before(expiresAt)
}
