package users

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// checkToken fails unless token looks like 32 random bytes in unpadded
// base64url.
func checkToken(t *testing.T, token string) {
	t.Helper()
	if !tokenPattern.MatchString(token) {
		t.Fatalf("token %q is not 32 bytes of unpadded base64url", token)
	}
	if b, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(b) != 32 {
		t.Fatalf("token decodes to %d bytes, %v", len(b), err)
	}
}

// assertSecretNotStored fails if token, in text or decoded, appears in any
// key or value of any bucket, or anywhere in the database file.
func assertSecretNotStored(t *testing.T, db *bbolt.DB, token string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(token), raw}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				for _, n := range needles {
					if bytes.Contains(k, n) || bytes.Contains(v, n) {
						t.Errorf("bucket %s stores the token (key %x)", name, k)
					}
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range needles {
		if bytes.Contains(file, n) {
			t.Error("database file contains the token")
		}
	}
}

// assertStoredUnder fails unless bucket has an entry under SHA-256(token).
func assertStoredUnder(t *testing.T, db *bbolt.DB, bucket []byte, token string) {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	_ = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucket).Get(sum[:]) == nil {
			t.Errorf("bucket %s has no entry under SHA-256 of the token", bucket)
		}
		return nil
	})
}

func TestTokenKey(t *testing.T) {
	valid := strings.Repeat("A", 43)
	key, ok := tokenKey(valid)
	sum := sha256.Sum256([]byte(valid))
	if !ok || !bytes.Equal(key, sum[:]) {
		t.Errorf("tokenKey(valid) = %x, %t", key, ok)
	}
	for _, bad := range []string{"", valid[:42], valid + "A", strings.Repeat("A", 1<<16)} {
		if _, ok := tokenKey(bad); ok {
			t.Errorf("tokenKey(len %d) accepted", len(bad))
		}
	}
}

// assertBucketEmpty fails unless bucket has no entries.
func assertBucketEmpty(t *testing.T, db *bbolt.DB, bucket []byte) {
	t.Helper()
	_ = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucket).Stats().KeyN; n != 0 {
			t.Errorf("bucket %s has %d entries, want none", bucket, n)
		}
		return nil
	})
}

// bucketLen returns the number of entries in bucket.
func bucketLen(t *testing.T, db *bbolt.DB, bucket []byte) int {
	t.Helper()
	n := 0
	_ = db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	return n
}
