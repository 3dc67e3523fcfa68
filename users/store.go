// Package users stores the accounts of latchkey's built-in issuer: users,
// their organization and role, and their argon2id password hashes, in
// buckets of a bbolt database.
//
// The first account to sign up creates the organization and becomes its
// admin. Under SignupOpen every later account signs up and joins it as a
// viewer; under SignupInvite later accounts need an invitation, created by
// an admin, which carries their role. Admins manage accounts (List,
// SetRole, SetDisabled, Remove), subject to the rule that the organization
// always keeps at least one active admin. Users change their own name and
// password, sign out everywhere, or reset a forgotten password with a
// single-use link.
//
// Passwords are hashed with argon2id, outside any write transaction, and at
// most Options.MaxConcurrentHashes hashes are computed at once. Invitation
// and reset tokens are stored only as their SHA-256 digests. Every write is
// a single bbolt transaction committed (and fsynced) before the call
// returns.
package users

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Bucket names. All of this package's buckets start with "users.".
var (
	bucketUsers   = []byte("users.users")   // user ID -> JSON User
	bucketByEmail = []byte("users.byemail") // normalised email -> user ID
	bucketOrgs    = []byte("users.orgs")    // organization ID -> JSON Organization
	bucketMeta    = []byte("users.meta")    // see meta keys

	bucketInvitations  = []byte("users.invitations")  // SHA-256(token) -> JSON Invitation
	bucketInviteEmails = []byte("users.inviteemails") // normalised email -> SHA-256(token)
	bucketResets       = []byte("users.resets")       // SHA-256(token) -> JSON resetRecord
	bucketResetUsers   = []byte("users.resetusers")   // user ID -> SHA-256(token)
)

// allBuckets are created by New.
var allBuckets = [][]byte{
	bucketUsers, bucketByEmail, bucketOrgs, bucketMeta,
	bucketInvitations, bucketInviteEmails, bucketResets, bucketResetUsers,
}

// Keys of bucketMeta.
var (
	metaSchema = []byte("schema")       // schemaVersion
	metaOrgID  = []byte("organization") // ID of the single organization
)

// schemaVersion is the layout of the buckets written by this package.
// Version 1 gained buckets and User fields compatibly (missing buckets are
// created, missing fields are zero), so it did not change.
const schemaVersion = "1"

// DefaultOrganizationName is the name of the organization created by the
// first sign-up when Options.OrganizationName is empty.
const DefaultOrganizationName = "Default organization"

// Options configures a Store. Zero values get the defaults noted.
type Options struct {
	// ValidEmailDomain, if not empty, is the only email domain allowed to
	// sign up, compared case-insensitively and exactly: "example.com"
	// admits neither "sub.example.com" nor "badexample.com". It applies to
	// every sign-up, the first included. It must itself be a valid domain
	// (no '@').
	ValidEmailDomain string
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Rand is the source of randomness for IDs and salts; default
	// crypto/rand.Reader. It need not be safe for concurrent use.
	Rand io.Reader
	// Hash are the argon2id parameters for new hashes. Each zero field
	// takes the value of the same field of DefaultHashParams, so the zero
	// HashParams means DefaultHashParams.
	Hash HashParams
	// MaxConcurrentHashes bounds the argon2 computations running at once;
	// others wait, or give up when their context is done. Default
	// runtime.GOMAXPROCS(0).
	MaxConcurrentHashes int
	// MaxQueuedHashes bounds the hashes waiting for a slot; beyond it a
	// sign-in fails at once with ErrBusy instead of queueing without end.
	// Default 32 × MaxConcurrentHashes.
	MaxQueuedHashes int
	// OrganizationName is the name given to the organization the first
	// account creates; default DefaultOrganizationName.
	OrganizationName string
	// SignupPolicy decides who may SignUp: "" or SignupOpen (the
	// default) lets anyone in ValidEmailDomain sign up, later accounts
	// joining as RoleViewer; SignupInvite lets SignUp create only the
	// very first account, later ones need an invitation. See
	// ParseSignupPolicy.
	SignupPolicy SignupPolicy
}

// Store holds users and their organization in a bbolt database. It is safe
// for concurrent use.
type Store struct {
	db      *bbolt.DB
	now     func() time.Time
	randMu  sync.Mutex // guards rand
	rand    io.Reader
	params  HashParams
	domain  string // normalised ValidEmailDomain, "" for any
	orgName string
	policy  SignupPolicy
	limiter *hashLimiter
	// dummyHash is verified when Authenticate finds no user, so that an
	// unknown email costs as much as a wrong password.
	dummyHash string
}

// New returns a Store over db, creating its buckets if they are missing.
// It computes one password hash (for Authenticate's timing equalisation),
// so it takes as long as one login.
func New(db *bbolt.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("users: new store: nil database")
	}
	s := &Store{
		db:      db,
		now:     opts.Now,
		rand:    opts.Rand,
		params:  opts.Hash.withDefaults(),
		orgName: strings.TrimSpace(opts.OrganizationName),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.orgName == "" {
		s.orgName = DefaultOrganizationName
	}
	var err error
	if s.policy, err = ParseSignupPolicy(string(opts.SignupPolicy)); err != nil {
		return nil, fmt.Errorf("users: new store: %w", err)
	}
	if err := s.params.validate(); err != nil {
		return nil, fmt.Errorf("users: new store: %w", err)
	}
	n := opts.MaxConcurrentHashes
	if n < 0 {
		return nil, fmt.Errorf("users: new store: MaxConcurrentHashes is negative (%d)", n)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.limiter = newHashLimiter(n)
	s.limiter.maxWaiting = int64(opts.MaxQueuedHashes)
	if s.limiter.maxWaiting <= 0 {
		s.limiter.maxWaiting = int64(32 * n)
	}
	if s.domain, err = normalizeDomainPolicy(opts.ValidEmailDomain); err != nil {
		return nil, fmt.Errorf("users: new store: %w", err)
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaSchema); {
		case v == nil:
			return meta.Put(metaSchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("the data was written by another version of latchkey (user schema %q, this version reads %q): run that version, or restore a backup of the data directory", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("users: new store: %w", err)
	}

	var dummy [32]byte
	if err := s.readRand(dummy[:]); err != nil {
		return nil, fmt.Errorf("users: new store: generating dummy password: %w", err)
	}
	if s.dummyHash, err = s.hashPassword(context.Background(), hex.EncodeToString(dummy[:])); err != nil {
		return nil, fmt.Errorf("users: new store: hashing dummy password: %w", err)
	}
	return s, nil
}

// Get returns the user with the given ID, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: get %q: %w", id, err)
	}
	var u User
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, err = getUser(tx, id)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("users: get %q: %w", id, err)
	}
	return u, nil
}

// ByEmail returns the user with the given email address, compared after
// NormalizeEmail. If there is none the error wraps ErrNotFound; if email is
// not a valid address, the error wraps both ErrNotFound and
// ErrInvalidEmail.
func (s *Store) ByEmail(ctx context.Context, email string) (User, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		return User{}, fmt.Errorf("users: by email: %w: %w", ErrNotFound, err)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: by email %q: %w", normalized, err)
	}
	var u User
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, err = getUserByEmail(tx, normalized)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("users: by email %q: %w", normalized, err)
	}
	return u, nil
}

// Organization returns the organization with the given ID, or an error
// wrapping ErrNotFound.
func (s *Store) Organization(ctx context.Context, id string) (Organization, error) {
	if err := ctx.Err(); err != nil {
		return Organization{}, fmt.Errorf("users: organization %q: %w", id, err)
	}
	var org Organization
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketOrgs).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &org); err != nil {
			return fmt.Errorf("decoding organization: %w", err)
		}
		return nil
	})
	if err != nil {
		return Organization{}, fmt.Errorf("users: organization %q: %w", id, err)
	}
	return org, nil
}

// Count returns the number of users.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("users: count: %w", err)
	}
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("users: count: %w", err)
	}
	return n, nil
}

// NeedsSetup reports whether no account exists yet, that is whether the
// next SignUp will create the organization and its admin.
func (s *Store) NeedsSetup(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("users: needs setup: %w", err)
	}
	empty := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketUsers).Cursor().First()
		empty = k == nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("users: needs setup: %w", err)
	}
	return empty, nil
}

// SignupPolicy returns the Store's sign-up policy, SignupOpen or
// SignupInvite, for example to decide whether to offer a sign-up form.
func (s *Store) SignupPolicy() SignupPolicy {
	return s.policy
}

// newID returns 128 random bits in lower-case hex.
func (s *Store) newID() (string, error) {
	var b [16]byte
	if err := s.readRand(b[:]); err != nil {
		return "", fmt.Errorf("generating ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// getUser reads a user by ID; the error is ErrNotFound if absent.
func getUser(tx *bbolt.Tx, id string) (User, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return User{}, ErrNotFound
	}
	return decodeUser(v)
}

// decodeUser decodes a stored user.
func decodeUser(v []byte) (User, error) {
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return User{}, fmt.Errorf("decoding user: %w", err)
	}
	return u, nil
}

// getUserByEmail reads a user by normalised email; the error is ErrNotFound
// if absent.
func getUserByEmail(tx *bbolt.Tx, email string) (User, error) {
	id := tx.Bucket(bucketByEmail).Get([]byte(email))
	if id == nil {
		return User{}, ErrNotFound
	}
	u, err := getUser(tx, string(id))
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("email index points at missing user %q: %w", id, ErrNotFound)
	}
	return u, err
}

// putUser writes u under its ID. The email index is the caller's business.
func putUser(tx *bbolt.Tx, u User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encoding user: %w", err)
	}
	if err := tx.Bucket(bucketUsers).Put([]byte(u.ID), v); err != nil {
		return fmt.Errorf("writing user: %w", err)
	}
	return nil
}

// updateUser applies f to the user with the given ID and stores the result,
// in one write transaction. The error is ErrNotFound if there is no such
// user, or f's error, in which case nothing is written.
func (s *Store) updateUser(id string, f func(tx *bbolt.Tx, u *User) error) (User, error) {
	var u User
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if u, err = getUser(tx, id); err != nil {
			return err
		}
		if err := f(tx, &u); err != nil {
			return err
		}
		return putUser(tx, u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}
