package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// DefaultResetTTL is how long a password reset token stays valid when
// CreateResetToken is given no positive TTL.
const DefaultResetTTL = time.Hour

// resetRecord is a pending password reset, stored under the SHA-256 digest
// of its token.
type resetRecord struct {
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateResetToken creates a single-use password reset token for the user
// with the given ID, to be sent to the user's address (typically in a
// link), and returns it with its expiry. The token is 32 random bytes in
// unpadded base64url; only its SHA-256 digest is stored. It expires after
// ttl, or DefaultResetTTL if ttl <= 0. A new token replaces the user's
// previous one, which stops working; expired tokens of all users are
// deleted in the same transaction.
//
// A token is created for a disabled account too, but ResetPassword refuses
// it. Errors wrap ErrNotFound or ctx's error.
func (s *Store) CreateResetToken(ctx context.Context, userID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = DefaultResetTTL
	}
	if err := ctx.Err(); err != nil {
		return "", time.Time{}, fmt.Errorf("users: create reset token %q: %w", userID, err)
	}
	token, key, err := s.newToken()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("users: create reset token %q: %w", userID, err)
	}
	now := s.now().UTC()
	rec := resetRecord{UserID: userID, CreatedAt: now, ExpiresAt: now.Add(ttl)}

	err = s.db.Update(func(tx *bbolt.Tx) error {
		if _, err := getUser(tx, userID); err != nil {
			return err
		}
		if err := deleteExpiredResets(tx, now); err != nil {
			return err
		}
		if err := deleteResetFor(tx, userID); err != nil {
			return err
		}
		resets := tx.Bucket(bucketResets)
		if resets.Get(key) != nil {
			return errors.New("reset token collision")
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encoding reset: %w", err)
		}
		if err := resets.Put(key, v); err != nil {
			return fmt.Errorf("writing reset: %w", err)
		}
		if err := tx.Bucket(bucketResetUsers).Put([]byte(userID), key); err != nil {
			return fmt.Errorf("writing reset user index: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("users: create reset token %q: %w", userID, err)
	}
	return token, rec.ExpiresAt, nil
}

// ResetPassword sets a new password for the user a reset token belongs to,
// consuming the token, and returns the updated user.
//
// newPassword must pass ValidatePassword. It is hashed outside any write
// transaction; then one transaction checks the token again, deletes it,
// stores the new hash and sets SessionsNotBefore to now, so that a token
// resets at most one password even when used concurrently. An unknown,
// expired, replaced or used token, or one belonging to a disabled or
// removed account, returns an error wrapping ErrResetInvalid, the same for
// all.
//
// Errors wrap ErrPasswordTooShort, ErrPasswordTooLong, ErrResetInvalid, or
// ctx's error.
func (s *Store) ResetPassword(ctx context.Context, token, newPassword string) (User, error) {
	if err := ValidatePassword(newPassword); err != nil {
		return User{}, fmt.Errorf("users: reset password: %w", err)
	}
	// Check the token before hashing, so that a bad one costs nothing;
	// the write transaction below checks it again.
	target, key, err := s.lookupReset(ctx, token)
	if err != nil {
		return User{}, fmt.Errorf("users: reset password: %w", err)
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return User{}, fmt.Errorf("users: reset password %q: %w", target.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: reset password %q: %w", target.ID, err)
	}
	now := s.now().UTC()

	var u User
	err = s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if u, err = usableReset(tx, key, now); err != nil {
			return err
		}
		// usableReset checked that the user's index points at key, so this
		// deletes the token and its index entry.
		if err := deleteResetFor(tx, u.ID); err != nil {
			return err
		}
		u.PasswordHash = hash
		u.revokeSessionsAt(now)
		return putUser(tx, u)
	})
	if err != nil {
		return User{}, fmt.Errorf("users: reset password %q: %w", target.ID, err)
	}
	return u, nil
}

// ResetTarget returns the user a reset token belongs to, for example to
// show "Set a new password for …" on the reset form. It fails exactly when
// ResetPassword would refuse the token, with an error wrapping
// ErrResetInvalid.
func (s *Store) ResetTarget(ctx context.Context, token string) (User, error) {
	u, _, err := s.lookupReset(ctx, token)
	if err != nil {
		return User{}, fmt.Errorf("users: reset target: %w", err)
	}
	return u, nil
}

// lookupReset is ResetTarget without the error prefix; it also returns the
// token's storage key.
func (s *Store) lookupReset(ctx context.Context, token string) (User, []byte, error) {
	if err := ctx.Err(); err != nil {
		return User{}, nil, err
	}
	key, ok := tokenKey(token)
	if !ok {
		return User{}, nil, ErrResetInvalid
	}
	now := s.now()
	var u User
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, err = usableReset(tx, key, now)
		return err
	})
	if err != nil {
		return User{}, nil, err
	}
	return u, key, nil
}

// usableReset reads the reset stored under key and returns its user if the
// reset can be used at now: it exists, has not expired, is the user's
// current reset, and the user exists and is not disabled. Any failure is
// ErrResetInvalid.
func usableReset(tx *bbolt.Tx, key []byte, now time.Time) (User, error) {
	v := tx.Bucket(bucketResets).Get(key)
	if v == nil {
		return User{}, ErrResetInvalid
	}
	var rec resetRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return User{}, fmt.Errorf("decoding reset: %w", err)
	}
	if expired(rec.ExpiresAt, now) {
		return User{}, ErrResetInvalid
	}
	if !bytes.Equal(tx.Bucket(bucketResetUsers).Get([]byte(rec.UserID)), key) {
		return User{}, ErrResetInvalid
	}
	u, err := getUser(tx, rec.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrResetInvalid
	}
	if err != nil {
		return User{}, err
	}
	if u.Disabled {
		return User{}, ErrResetInvalid
	}
	return u, nil
}

// deleteResetFor deletes the pending reset of the user with the given ID,
// if any.
func deleteResetFor(tx *bbolt.Tx, userID string) error {
	byUser := tx.Bucket(bucketResetUsers)
	key := byUser.Get([]byte(userID))
	if key == nil {
		return nil
	}
	if err := tx.Bucket(bucketResets).Delete(bytes.Clone(key)); err != nil {
		return fmt.Errorf("deleting reset: %w", err)
	}
	if err := byUser.Delete([]byte(userID)); err != nil {
		return fmt.Errorf("deleting reset user index: %w", err)
	}
	return nil
}

// deleteExpiredResets deletes every reset expired at now.
func deleteExpiredResets(tx *bbolt.Tx, now time.Time) error {
	var stale []resetRecord
	var keys [][]byte
	err := tx.Bucket(bucketResets).ForEach(func(k, v []byte) error {
		var rec resetRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decoding reset: %w", err)
		}
		if expired(rec.ExpiresAt, now) {
			stale = append(stale, rec)
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting while iterating would skip entries.
	byUser := tx.Bucket(bucketResetUsers)
	for i, rec := range stale {
		if err := tx.Bucket(bucketResets).Delete(keys[i]); err != nil {
			return fmt.Errorf("deleting reset: %w", err)
		}
		if bytes.Equal(byUser.Get([]byte(rec.UserID)), keys[i]) {
			if err := byUser.Delete([]byte(rec.UserID)); err != nil {
				return fmt.Errorf("deleting reset user index: %w", err)
			}
		}
	}
	return nil
}
