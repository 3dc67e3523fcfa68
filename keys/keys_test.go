package keys

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.etcd.io/bbolt"
)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))

// template is the path of a database holding one generated key, shared by
// tests (by copying) so that RSA keys are generated only a few times.
var template string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keys-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	template = filepath.Join(dir, "template.db")
	code := func() int {
		db, err := bbolt.Open(template, 0o600, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, err = New(db, Options{Now: func() time.Time { return fixedNow }})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

// openCopy opens a private copy of the template database.
func openCopy(t *testing.T) (*bbolt.DB, string) {
	t.Helper()
	data, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "latchkey.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return openDB(t, path), path
}

func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newManager(t *testing.T, db *bbolt.DB, opts Options) *Manager {
	t.Helper()
	m, err := New(db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func TestNewGeneratesThenReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fresh.db")
	db := openDB(t, path)
	m := newManager(t, db, Options{})
	k := m.SigningKey()
	if k.ID == "" || k.Private == nil || k.Algorithm != jose.RS256 {
		t.Fatalf("bad key: %v", k)
	}
	if got := k.Private.N.BitLen(); got != 2048 {
		t.Errorf("key size %d, want 2048", got)
	}
	if k.CreatedAt.IsZero() {
		t.Error("CreatedAt is zero")
	}
	err := db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(BucketName))
		if b == nil {
			return errors.New("bucket missing")
		}
		if got := string(b.Get([]byte("active"))); got != k.ID {
			return fmt.Errorf("active = %q, want %q", got, k.ID)
		}
		var rec record
		if err := json.Unmarshal(b.Get([]byte("key/"+k.ID)), &rec); err != nil {
			return err
		}
		if rec.KID != k.ID || rec.Alg != "RS256" || len(rec.DER) == 0 {
			return fmt.Errorf("bad record kid=%q alg=%q", rec.KID, rec.Alg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2 := openDB(t, path)
	k2 := newManager(t, db2, Options{}).SigningKey()
	if k2.ID != k.ID {
		t.Errorf("kid after reopen %q, want %q", k2.ID, k.ID)
	}
	if k2.Private.N.Cmp(k.Private.N) != 0 || k2.Private.D.Cmp(k.Private.D) != 0 {
		t.Error("key changed after reopen")
	}
	if !k2.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("CreatedAt after reopen %v, want %v", k2.CreatedAt, k.CreatedAt)
	}
}

func TestReloadKeepsKeyAndCreatedAt(t *testing.T) {
	db, _ := openCopy(t)
	a := newManager(t, db, Options{}).SigningKey()
	b := newManager(t, db, Options{Bits: 4096}).SigningKey() // existing key wins
	if a.ID != b.ID || a.Private.N.Cmp(b.Private.N) != 0 {
		t.Fatal("key differs between loads")
	}
	if want := fixedNow.UTC().Truncate(time.Second); !a.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt %v, want %v", a.CreatedAt, want)
	}
}

func TestKIDIsRFC7638Thumbprint(t *testing.T) {
	db, _ := openCopy(t)
	k := newManager(t, db, Options{}).SigningKey()
	jwk := jose.JSONWebKey{Key: &k.Private.PublicKey}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(sum); k.ID != want {
		t.Errorf("kid %q, want thumbprint %q", k.ID, want)
	}
}

func TestPublicKeys(t *testing.T) {
	db, _ := openCopy(t)
	m := newManager(t, db, Options{})
	pks := m.PublicKeys()
	if len(pks) != 1 {
		t.Fatalf("%d public keys, want 1", len(pks))
	}
	pk := pks[0]
	if _, ok := pk.Key.(*rsa.PublicKey); !ok {
		t.Fatalf("key is %T, want *rsa.PublicKey", pk.Key)
	}
	if pk.KeyID != m.SigningKey().ID || pk.Use != "sig" || pk.Algorithm != "RS256" {
		t.Errorf("kid=%q use=%q alg=%q", pk.KeyID, pk.Use, pk.Algorithm)
	}

	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: pks})
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	got := set.Keys[0]
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := got[private]; ok {
			t.Errorf("JWKS contains private member %q", private)
		}
	}
	for member, want := range map[string]string{"kid": m.SigningKey().ID, "use": "sig", "alg": "RS256", "kty": "RSA"} {
		if got[member] != want {
			t.Errorf("JWKS %q = %v, want %q", member, got[member], want)
		}
	}

	// Mutating the returned slice must not affect the manager.
	pks[0].KeyID = "tampered"
	if m.PublicKeys()[0].KeyID != m.SigningKey().ID {
		t.Error("PublicKeys returned the internal slice")
	}
}

func TestSignVerify(t *testing.T) {
	db, _ := openCopy(t)
	m := newManager(t, db, Options{})
	k := m.SigningKey()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.Algorithm, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.ID}},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"sub":"alice"}`)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	kid := parsed.Signatures[0].Header.KeyID
	if kid != k.ID {
		t.Fatalf("header kid %q, want %q", kid, k.ID)
	}
	set := jose.JSONWebKeySet{Keys: m.PublicKeys()}
	found := set.Key(kid)
	if len(found) != 1 {
		t.Fatalf("kid %q not in JWKS", kid)
	}
	got, err := parsed.Verify(found[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("payload %q", got)
	}
}

func TestBitsRejected(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "x.db"))
	for _, bits := range []int{-1, 512, 1024, 2047, 16384} {
		if _, err := New(db, Options{Bits: bits}); err == nil {
			t.Errorf("Bits=%d accepted", bits)
		} else if !strings.Contains(err.Error(), fmt.Sprint(bits)) {
			t.Errorf("Bits=%d: error %q does not name the size", bits, err)
		}
	}
	// Nothing was generated or stored.
	err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(BucketName)) != nil {
			return errors.New("bucket created despite rejected options")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil db accepted")
	}
}

func TestSecret(t *testing.T) {
	db, path := openCopy(t)
	m := newManager(t, db, Options{})

	a, err := m.Secret("session", 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("bad secret length %d or all zero", len(a))
	}
	again, err := m.Secret("session", 32)
	if err != nil || !bytes.Equal(a, again) {
		t.Fatalf("second call differs (err %v)", err)
	}
	again[0] ^= 0xff // callers own the returned slice
	if again2, _ := m.Secret("session", 32); !bytes.Equal(a, again2) {
		t.Fatal("caller mutation leaked into the store")
	}

	b, err := m.Secret("csrf", 32)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("distinct names gave equal secrets")
	}

	_, err = m.Secret("session", 64)
	if err == nil {
		t.Fatal("size mismatch accepted")
	}
	if !strings.Contains(err.Error(), "session") || strings.Contains(err.Error(), fmt.Sprintf("%x", a)) {
		t.Errorf("size mismatch error %q", err)
	}

	for _, tc := range []struct {
		name string
		size int
	}{{"", 32}, {"x", 0}, {"x", -1}, {"x", MaxSecretSize + 1}, {strings.Repeat("n", MaxSecretNameLen+1), 32}} {
		if _, err := m.Secret(tc.name, tc.size); err == nil {
			t.Errorf("Secret(%q, %d) accepted", tc.name, tc.size)
		}
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, openDB(t, path), Options{})
	a2, err := m2.Secret("session", 32)
	if err != nil || !bytes.Equal(a, a2) {
		t.Errorf("secret changed across reopen (err %v)", err)
	}
	b2, err := m2.Secret("csrf", 32)
	if err != nil || !bytes.Equal(b, b2) {
		t.Errorf("secret changed across reopen (err %v)", err)
	}
}

func TestSecretConcurrentFirstCalls(t *testing.T) {
	db, _ := openCopy(t)
	m := newManager(t, db, Options{})
	const n = 16
	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = m.Secret("concurrent", 48)
			_ = m.SigningKey()
			_ = m.PublicKeys()
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !bytes.Equal(results[i], results[0]) {
			t.Fatalf("call %d returned a different secret", i)
		}
	}
}

func TestSecretUsesRand(t *testing.T) {
	db, _ := openCopy(t)
	want := bytes.Repeat([]byte{7}, 16)
	m := newManager(t, db, Options{Rand: bytes.NewReader(want)})
	got, err := m.Secret("det", 16)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %x, %v", got, err)
	}
	// The reader is exhausted: a new secret fails, without storing anything.
	if _, err := m.Secret("more", 16); !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	m2 := newManager(t, db, Options{Rand: bytes.NewReader(bytes.Repeat([]byte{9}, 16))})
	got, err = m2.Secret("more", 16)
	if err != nil || got[0] != 9 {
		t.Fatalf("got %x, %v", got, err)
	}
}

func TestCorruptStoredKey(t *testing.T) {
	db, _ := openCopy(t)
	k := newManager(t, db, Options{}).SigningKey()
	var orig []byte
	if err := db.View(func(tx *bbolt.Tx) error {
		orig = bytes.Clone(tx.Bucket([]byte(BucketName)).Get([]byte("key/" + k.ID)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(orig, &rec); err != nil {
		t.Fatal(err)
	}
	derB64 := base64.StdEncoding.EncodeToString(rec.DER)

	mutate := func(f func(r *record)) []byte {
		r := rec
		r.DER = bytes.Clone(rec.DER)
		f(&r)
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := map[string]struct {
		value []byte // nil deletes the record
		want  string
	}{
		"not json":      {[]byte("{garbage"), "corrupt record"},
		"truncated der": {mutate(func(r *record) { r.DER = r.DER[:len(r.DER)/2] }), "corrupt private key"},
		"flipped der":   {mutate(func(r *record) { r.DER[len(r.DER)-5] ^= 0xff }), "corrupt private key"},
		"wrong kid":     {mutate(func(r *record) { r.KID = "other" }), "other"},
		"wrong alg":     {mutate(func(r *record) { r.Alg = "HS256" }), "HS256"},
		"missing":       {nil, "missing"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket([]byte(BucketName))
				if tc.value == nil {
					return b.Delete([]byte("key/" + k.ID))
				}
				return b.Put([]byte("key/"+k.ID), tc.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(db, Options{})
			if err == nil {
				t.Fatal("corrupt key accepted")
			}
			msg := err.Error()
			for _, want := range []string{k.ID, BucketName, tc.want, "restore the data directory from a backup"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, derB64[:40]) || strings.Contains(msg, k.Private.D.String()[:20]) {
				t.Errorf("error leaks key material: %q", msg)
			}
		})
	}

	// A kid pointing at a record with a different (valid) key is rejected.
	if err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(BucketName))
		if err := b.Put([]byte("key/fake"), mutate(func(r *record) { r.KID = "fake" })); err != nil {
			return err
		}
		return b.Put([]byte("active"), []byte("fake"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(db, Options{}); err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Errorf("kid/thumbprint mismatch: err = %v", err)
	}
}

func TestKeyStringRedacts(t *testing.T) {
	db, _ := openCopy(t)
	k := newManager(t, db, Options{}).SigningKey()
	d := k.Private.D.String()
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, d) || !strings.Contains(s, k.ID) {
			t.Errorf("Key formats as %q", s)
		}
	}
}
