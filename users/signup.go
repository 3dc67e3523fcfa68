package users

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// MaxNameLength is the longest accepted display name, in runes.
const MaxNameLength = 200

// SignUp creates an account. The email is normalised with NormalizeEmail
// and must satisfy Options.ValidEmailDomain; the name is trimmed and must
// be 1 to MaxNameLength runes without control characters; the password must
// pass ValidatePassword.
//
// The first account creates the organization and is its RoleAdmin. Under
// SignupOpen every later account joins that organization as RoleViewer;
// under SignupInvite later sign-ups are refused with ErrSignupClosed (use
// AcceptInvitation). This is decided in the same transaction that checks
// the email is unused and writes the account, so concurrent first sign-ups
// produce exactly one admin, and under SignupInvite exactly one account.
// The account is durable when SignUp returns.
//
// Errors wrap ErrInvalidEmail, ErrNameRequired, ErrNameTooLong,
// ErrInvalidName, ErrPasswordTooShort, ErrPasswordTooLong, ErrEmailDomain,
// ErrSignupClosed, ErrEmailTaken, or ctx's error.
func (s *Store) SignUp(ctx context.Context, email, name, password string) (User, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		return User{}, fmt.Errorf("users: sign up: %w", err)
	}
	if name, err = validateName(name); err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	if !domainAllowed(s.domain, normalized) {
		return User{}, fmt.Errorf("users: sign up %q: %w: only %s addresses may sign up", normalized, ErrEmailDomain, s.domain)
	}
	if s.policy == SignupInvite {
		// Refuse before hashing, so that a closed sign-up form costs
		// nothing; the write transaction below decides for good.
		if err := ctx.Err(); err != nil {
			return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
		}
		err := s.db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(bucketMeta).Get(metaOrgID) != nil {
				return ErrSignupClosed
			}
			return nil
		})
		if err != nil {
			return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
		}
	}

	// Slow work first, outside the write transaction, which serialises
	// all writers.
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	userID, err := s.newID()
	if err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	orgID, err := s.newID()
	if err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	now := s.now().UTC()
	u := User{
		ID:           userID,
		Email:        normalized,
		Name:         name,
		PasswordHash: hash,
		CreatedAt:    now,
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}

	err = s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if s.policy == SignupInvite && meta.Get(metaOrgID) != nil {
			// Not the first account: whoever won the race to be first
			// committed before us.
			return ErrSignupClosed
		}
		byEmail := tx.Bucket(bucketByEmail)
		if byEmail.Get([]byte(normalized)) != nil {
			return ErrEmailTaken
		}
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user ID collision for %q", u.ID)
		}
		if existing := meta.Get(metaOrgID); existing != nil {
			u.OrgID = string(existing)
			u.Role = RoleViewer
		} else {
			org := Organization{ID: orgID, Name: s.orgName, CreatedAt: now}
			v, err := json.Marshal(org)
			if err != nil {
				return fmt.Errorf("encoding organization: %w", err)
			}
			if err := tx.Bucket(bucketOrgs).Put([]byte(org.ID), v); err != nil {
				return fmt.Errorf("writing organization: %w", err)
			}
			if err := meta.Put(metaOrgID, []byte(org.ID)); err != nil {
				return fmt.Errorf("writing organization ID: %w", err)
			}
			u.OrgID = org.ID
			u.Role = RoleAdmin
		}
		if err := putUser(tx, u); err != nil {
			return err
		}
		if err := byEmail.Put([]byte(normalized), []byte(u.ID)); err != nil {
			return fmt.Errorf("writing email index: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("users: sign up %q: %w", normalized, err)
	}
	return u, nil
}

// validateName trims name and checks it is valid UTF-8, non-empty, at most
// MaxNameLength runes and free of control characters.
// ValidateName checks a display name as SignUp does: trimmed, non-empty,
// valid UTF-8 without control characters, at most MaxNameLength runes.
// The error wraps ErrNameRequired, ErrNameTooLong or ErrInvalidName.
func ValidateName(name string) error {
	_, err := validateName(name)
	return err
}

func validateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", ErrNameRequired
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	case utf8.RuneCountInString(name) > MaxNameLength:
		return "", fmt.Errorf("%w: at most %d characters allowed", ErrNameTooLong, MaxNameLength)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: control characters not allowed", ErrInvalidName)
	}
	return name, nil
}
