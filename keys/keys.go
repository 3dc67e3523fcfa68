// Package keys manages latchkey's signing keys: an RSA key for the issuer's tokens, kept in bbolt with a stable key ID, its public JWKS, and named random secrets generated once and kept.
//
// # Storage layout
//
// Everything lives in the bbolt bucket "keys" (see [BucketName]):
//
//	"active"          → the kid of the active signing key (UTF-8 string)
//	"key/<kid>"       → JSON record {"kid", "alg", "created", "der"} where
//	                    der is the PKCS#8 DER private key (base64 in JSON)
//	"secret/<name>"   → the raw bytes of the named secret
//
// Key records are addressed by kid and the active key by a pointer, so that
// rotation (several published keys, one active) can be added later without
// changing the format. Today exactly one key is created and used.
//
// Errors never contain key material or secret bytes.
package keys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.etcd.io/bbolt"
)

// BucketName is the bbolt bucket holding signing keys and secrets.
const BucketName = "keys"

const (
	activeKey    = "active"
	keyPrefix    = "key/"
	secretPrefix = "secret/"

	// MinBits is the smallest RSA key size accepted, for new and stored keys.
	MinBits = 2048
	// MaxBits is the largest RSA key size accepted for new keys (larger
	// sizes make key generation take unreasonably long).
	MaxBits = 8192
	// DefaultBits is the RSA key size used when Options.Bits is zero.
	DefaultBits = 2048

	// MaxSecretSize is the largest secret size, in bytes, Secret accepts.
	MaxSecretSize = 64 << 10
	// MaxSecretNameLen is the longest secret name, in bytes, Secret accepts.
	MaxSecretNameLen = 256
)

// Options configures New. The zero value is valid.
type Options struct {
	// Rand is the source of randomness for secrets; default crypto/rand.Reader.
	// Since Go 1.26 RSA key generation always uses a secure source and
	// ignores this reader (unless GODEBUG=cryptocustomrand=1).
	Rand io.Reader
	// Now is the clock used for CreatedAt; default time.Now.
	Now func() time.Time
	// Bits is the RSA key size for a newly generated key; default 2048.
	// Values below 2048 (or above 8192) are rejected.
	Bits int
}

// Key is a private signing key.
type Key struct {
	ID        string                  // kid: RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key
	Algorithm jose.SignatureAlgorithm // jose.RS256
	Private   *rsa.PrivateKey
	CreatedAt time.Time
}

// String describes the key without any private material.
func (k Key) String() string {
	return fmt.Sprintf("keys.Key{ID: %s, Algorithm: %s, CreatedAt: %s}", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339))
}

// GoString is like String, so that %#v does not print private material.
func (k Key) GoString() string { return k.String() }

// Manager holds the loaded signing key and gives access to named secrets.
// It is safe for concurrent use.
type Manager struct {
	db     *bbolt.DB
	rand   io.Reader
	active Key
	jwks   []jose.JSONWebKey
}

// record is the stored form of a key.
type record struct {
	KID     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	DER     []byte    `json:"der"`
}

// New opens latchkey's key store in db: it creates the bucket if missing and
// loads the active signing key, generating and storing one (in a single,
// synced transaction) if there is none.
func New(db *bbolt.DB, opts Options) (*Manager, error) {
	if db == nil {
		return nil, errors.New("keys: nil database")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Bits == 0 {
		opts.Bits = DefaultBits
	}
	if opts.Bits < MinBits || opts.Bits > MaxBits {
		return nil, fmt.Errorf("keys: RSA key size %d bits not allowed; use %d to %d", opts.Bits, MinBits, MaxBits)
	}

	var active Key
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(BucketName))
		if err != nil {
			return fmt.Errorf("keys: create bucket %q: %w", BucketName, err)
		}
		if kid := b.Get([]byte(activeKey)); kid != nil {
			active, err = loadKey(b, string(kid))
			return err
		}
		active, err = generate(opts)
		if err != nil {
			return err
		}
		return storeKey(b, active)
	})
	if err != nil {
		return nil, err
	}
	if db.NoSync {
		// Commits are not fsync'd in NoSync mode; make the new key durable.
		if err := db.Sync(); err != nil {
			return nil, fmt.Errorf("keys: sync: %w", err)
		}
	}

	return &Manager{
		db:     db,
		rand:   opts.Rand,
		active: active,
		jwks:   []jose.JSONWebKey{publicJWK(active)},
	}, nil
}

// SigningKey returns the active signing key. It does no parsing or I/O.
func (m *Manager) SigningKey() Key { return m.active }

// PublicKeys returns the public JWKS entries, the active key first. Each entry
// holds only an *rsa.PublicKey with KeyID, Use "sig" and Algorithm "RS256".
// The returned slice is a fresh copy of a cached one.
func (m *Manager) PublicKeys() []jose.JSONWebKey { return slices.Clone(m.jwks) }

// Secret returns the random secret of size bytes stored under name, creating
// it on first use. Later calls, including after reopening the database,
// return the same value; concurrent first calls agree on one value. A stored
// secret of a different size is an error. size must be 1 to MaxSecretSize.
func (m *Manager) Secret(name string, size int) ([]byte, error) {
	if name == "" {
		return nil, errors.New("keys: secret name must not be empty")
	}
	if len(name) > MaxSecretNameLen {
		return nil, fmt.Errorf("keys: secret name longer than %d bytes", MaxSecretNameLen)
	}
	if size < 1 || size > MaxSecretSize {
		return nil, fmt.Errorf("keys: secret %q: size %d out of range 1..%d", name, size, MaxSecretSize)
	}
	k := []byte(secretPrefix + name)

	// Fast path: already stored.
	var out []byte
	err := m.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(BucketName))
		if b == nil {
			return fmt.Errorf("keys: bucket %q missing", BucketName)
		}
		var err error
		out, err = storedSecret(b, name, k, size)
		return err
	})
	if err != nil || out != nil {
		return out, err
	}

	// Slow path: write transactions are serialized, so re-checking inside
	// Update makes concurrent first calls agree on a single value.
	err = m.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(BucketName))
		if b == nil {
			return fmt.Errorf("keys: bucket %q missing", BucketName)
		}
		var err error
		out, err = storedSecret(b, name, k, size)
		if err != nil || out != nil {
			return err
		}
		v := make([]byte, size)
		if _, err := io.ReadFull(m.rand, v); err != nil {
			return fmt.Errorf("keys: secret %q: read random: %w", name, err)
		}
		if err := b.Put(k, v); err != nil {
			return fmt.Errorf("keys: secret %q: store: %w", name, err)
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m.db.NoSync {
		if err := m.db.Sync(); err != nil {
			return nil, fmt.Errorf("keys: secret %q: sync: %w", name, err)
		}
	}
	return out, nil
}

// storedSecret returns a copy of the stored secret, nil if there is none.
func storedSecret(b *bbolt.Bucket, name string, k []byte, size int) ([]byte, error) {
	v := b.Get(k)
	if v == nil {
		return nil, nil
	}
	if len(v) != size {
		return nil, fmt.Errorf("keys: secret %q: stored size is %d bytes, requested %d", name, len(v), size)
	}
	// bbolt memory is only valid inside the transaction.
	return bytes.Clone(v), nil
}

func generate(opts Options) (Key, error) {
	priv, err := rsa.GenerateKey(opts.Rand, opts.Bits)
	if err != nil {
		return Key{}, fmt.Errorf("keys: generate RSA-%d key: %w", opts.Bits, err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return Key{}, fmt.Errorf("keys: generate: %w", err)
	}
	return Key{
		ID:        kid,
		Algorithm: jose.RS256,
		Private:   priv,
		// Stored with second precision in UTC, like what a reload yields.
		CreatedAt: opts.Now().UTC().Truncate(time.Second),
	}, nil
}

func storeKey(b *bbolt.Bucket, k Key) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return fmt.Errorf("keys: store %s: marshal PKCS#8: %w", k.ID, err)
	}
	rec, err := json.Marshal(record{KID: k.ID, Alg: string(k.Algorithm), Created: k.CreatedAt, DER: der})
	if err != nil {
		return fmt.Errorf("keys: store %s: encode record: %w", k.ID, err)
	}
	if err := b.Put([]byte(keyPrefix+k.ID), rec); err != nil {
		return fmt.Errorf("keys: store %s: %w", k.ID, err)
	}
	if err := b.Put([]byte(activeKey), []byte(k.ID)); err != nil {
		return fmt.Errorf("keys: store %s: set active: %w", k.ID, err)
	}
	return nil
}

// loadKey parses and checks the stored key kid. Errors name the bucket and
// kid but never include the record's contents.
func loadKey(b *bbolt.Bucket, kid string) (Key, error) {
	fail := func(format string, args ...any) (Key, error) {
		return Key{}, fmt.Errorf("keys: load %q from bucket %q: "+format+
			"; the database is damaged: restore the data directory from a backup (deleting the key bucket makes a new key, which ends every session and token)",
			append([]any{kid, BucketName}, args...)...)
	}
	raw := b.Get([]byte(keyPrefix + kid))
	if raw == nil {
		return fail("active key record %q missing", keyPrefix+kid)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fail("corrupt record: %w", err)
	}
	if rec.KID != kid {
		return fail("record has kid %q", rec.KID)
	}
	if rec.Alg != string(jose.RS256) {
		return fail("unsupported algorithm %q", rec.Alg)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(rec.DER)
	if err != nil {
		return fail("corrupt private key: %w", err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return fail("stored key is %T, want RSA", parsed)
	}
	if n := priv.N.BitLen(); n < MinBits {
		return fail("RSA key is %d bits, below the minimum %d", n, MinBits)
	}
	if err := priv.Validate(); err != nil {
		return fail("invalid private key: %w", err)
	}
	priv.Precompute()
	got, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return fail("%w", err)
	}
	if got != kid {
		return fail("kid does not match the key's thumbprint %q", got)
	}
	return Key{ID: kid, Algorithm: jose.RS256, Private: priv, CreatedAt: rec.Created.UTC()}, nil
}

// thumbprint returns the RFC 7638 SHA-256 JWK thumbprint, base64url-encoded.
func thumbprint(pub *rsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

func publicJWK(k Key) jose.JSONWebKey {
	return jose.JSONWebKey{
		Key:       &k.Private.PublicKey,
		KeyID:     k.ID,
		Use:       "sig",
		Algorithm: string(k.Algorithm),
	}
}
