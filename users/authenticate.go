package users

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Authenticate checks an email address and password and returns the
// account, with LastLoginAt set to now.
//
// An invalid or unknown email and a wrong password all return an error
// wrapping ErrInvalidCredentials; an unknown email still costs one password
// verification (against a dummy hash with the current parameters) so that
// timing does not reveal which accounts exist. A disabled account returns
// ErrDisabled only when the password is right. A stored hash that is not a
// well-formed PHC string returns an error wrapping ErrMalformedHash.
//
// If the stored hash was made with parameters other than the Store's
// current HashParams, the password is re-hashed with the current ones and
// stored in the same transaction that records LastLoginAt.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		// The address is malformed whether or not any account exists,
		// so answering fast reveals nothing.
		return User{}, fmt.Errorf("users: authenticate: %w", ErrInvalidCredentials)
	}
	// No account can have a password longer than MaxPasswordLength, and
	// the answer does not depend on the account: refuse without hashing
	// arbitrarily large inputs.
	if passwordTooLong(password) {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, ErrInvalidCredentials)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, err)
	}

	var u User
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, err = getUserByEmail(tx, normalized)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		if _, _, err := s.verifyPassword(ctx, s.dummyHash, password); err != nil {
			return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, err)
		}
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, ErrInvalidCredentials)
	}
	if err != nil {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, err)
	}

	ok, stored, err := s.verifyPassword(ctx, u.PasswordHash, password)
	if err != nil {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, err)
	}
	if !ok {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, ErrInvalidCredentials)
	}
	if u.Disabled {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, ErrDisabled)
	}

	var rehash string
	if stored.params != s.params {
		if rehash, err = s.hashPassword(ctx, password); err != nil {
			return User{}, fmt.Errorf("users: authenticate %q: rehashing: %w", normalized, err)
		}
	}
	now := s.now().UTC()

	err = s.db.Update(func(tx *bbolt.Tx) error {
		cur, err := getUser(tx, u.ID)
		if errors.Is(err, ErrNotFound) {
			// Deleted since we looked.
			return ErrInvalidCredentials
		}
		if err != nil {
			return err
		}
		if cur.PasswordHash != u.PasswordHash || cur.Email != normalized {
			// Password or email changed since we verified: what we
			// checked is stale.
			return ErrInvalidCredentials
		}
		if cur.Disabled {
			return ErrDisabled
		}
		cur.LastLoginAt = now
		if rehash != "" {
			cur.PasswordHash = rehash
		}
		u = cur
		return putUser(tx, cur)
	})
	if err != nil {
		return User{}, fmt.Errorf("users: authenticate %q: %w", normalized, err)
	}
	return u, nil
}
