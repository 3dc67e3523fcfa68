package users

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxEmailLength is the longest accepted email address, in bytes, after
// normalisation (RFC 5321 path limit minus the angle brackets).
const MaxEmailLength = 254

// NormalizeEmail returns the canonical form of an email address: surrounding
// white space trimmed and the whole address lower-cased. Two addresses are
// the same account if and only if their normalised forms are equal.
//
// It returns an error wrapping ErrInvalidEmail unless the result is valid
// UTF-8 of at most MaxEmailLength bytes, without white space or control
// characters, with exactly one '@', a non-empty local part, and a domain
// made of at least two non-empty dot-separated labels. The error never
// quotes the input, which may be a password typed in the wrong field.
func NormalizeEmail(email string) (string, error) {
	e := strings.TrimSpace(email)
	// Before lower-casing, which would replace invalid bytes with U+FFFD.
	if !utf8.ValidString(e) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidEmail)
	}
	e = strings.ToLower(e)
	switch {
	case e == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	case len(e) > MaxEmailLength:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidEmail, MaxEmailLength)
	case strings.IndexFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", fmt.Errorf("%w: contains white space or control characters", ErrInvalidEmail)
	case strings.Count(e, "@") != 1:
		return "", fmt.Errorf("%w: must contain exactly one '@'", ErrInvalidEmail)
	}
	local, domain, _ := strings.Cut(e, "@")
	if local == "" {
		return "", fmt.Errorf("%w: empty local part", ErrInvalidEmail)
	}
	if err := checkDomainSyntax(domain); err != nil {
		return "", err
	}
	return e, nil
}

// checkDomainSyntax requires at least two non-empty dot-separated labels.
// The input is already trimmed, lower-cased and free of white space.
func checkDomainSyntax(domain string) error {
	if !strings.Contains(domain, ".") {
		return fmt.Errorf("%w: domain must contain a dot", ErrInvalidEmail)
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" {
			return fmt.Errorf("%w: domain has an empty label", ErrInvalidEmail)
		}
	}
	return nil
}

// normalizeDomainPolicy validates and normalises Options.ValidEmailDomain.
// "" means any domain.
func normalizeDomainPolicy(domain string) (string, error) {
	if domain == "" {
		return "", nil
	}
	if err := CheckDomain(strings.ToLower(strings.TrimSpace(domain))); err != nil {
		return "", fmt.Errorf("users: ValidEmailDomain %w (%w)", err, ErrInvalidEmail)
	}
	// Reuse NormalizeEmail's rules too, so the policy compares
	// like-for-like with normalised addresses.
	e, err := NormalizeEmail("x@" + strings.TrimSpace(domain))
	if err != nil {
		return "", fmt.Errorf("users: ValidEmailDomain is not a domain name: %w", err)
	}
	_, d, _ := strings.Cut(e, "@")
	return d, nil
}

// domainAllowed reports whether the normalised address email is admitted by
// the normalised policy domain: exact equality of the domain part, so
// "example.com" admits neither "sub.example.com" nor "badexample.com".
func domainAllowed(policy, email string) bool {
	if policy == "" {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	return at >= 0 && email[at+1:] == policy
}

// CheckDomain checks that d is a bare, lower-case DNS domain such as
// example.com, as ValidEmailDomain must be; the error says what is wrong.
func CheckDomain(d string) error {
	switch {
	case strings.ContainsAny(d, "@"):
		return errors.New(`must not contain "@"`)
	case strings.Contains(d, "://") || strings.ContainsAny(d, ":/?#"):
		return errors.New("must not contain a scheme, port or path")
	case strings.IndexFunc(d, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return errors.New("must not contain spaces")
	case !strings.Contains(d, "."):
		return errors.New(`must contain a dot`)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("has an empty or too long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New(`has a label starting or ending with "-"`)
		}
		for _, r := range label {
			if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("contains the character %q", r)
			}
		}
	}
	return nil
}
