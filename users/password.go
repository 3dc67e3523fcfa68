package users

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length bounds, counted in characters (runes), following NIST SP
// 800-63B: at least 64 characters must be allowed and there are no
// composition rules.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// ValidatePassword checks the length of a new password: at least
// MinPasswordLength and at most MaxPasswordLength runes. There are no other
// rules. The error wraps ErrPasswordTooShort or ErrPasswordTooLong.
func ValidatePassword(password string) error {
	if passwordTooLong(password) {
		return fmt.Errorf("%w: at most %d characters allowed", ErrPasswordTooLong, MaxPasswordLength)
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return fmt.Errorf("%w: at least %d characters required", ErrPasswordTooShort, MinPasswordLength)
	}
	return nil
}

// passwordTooLong reports whether password exceeds MaxPasswordLength runes,
// with a cheap byte-length bound first so a huge input is not scanned. No
// stored password is that long, so a candidate that is can be refused
// without hashing.
func passwordTooLong(password string) bool {
	return len(password) > utf8.UTFMax*MaxPasswordLength || utf8.RuneCountInString(password) > MaxPasswordLength
}

// HashParams are the argon2id parameters used for new password hashes.
// Existing hashes keep the parameters recorded in them and are re-hashed
// with the Store's current parameters at their next successful login.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	KeyLen  uint32 // bytes of derived key
	SaltLen uint32 // bytes of random salt
}

// DefaultHashParams is the OWASP minimum recommendation for argon2id:
// 19 MiB of memory, 2 passes, 1 lane.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Bounds on hash parameters, applied both to the Store's configuration and
// to every stored hash before it is verified, so that a corrupted or
// tampered database cannot make verification exhaust memory or CPU.
const (
	MaxHashMemory = 2 * 1024 * 1024 // KiB, 2 GiB
	MaxHashTime   = 1024
	MinHashKeyLen = 16
	MaxHashKeyLen = 1024
	MinSaltLen    = 8
	MaxSaltLen    = 1024
)

// withDefaults replaces each zero field with the field of DefaultHashParams.
func (p HashParams) withDefaults() HashParams {
	d := DefaultHashParams
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	return p
}

// validate checks p against the bounds above and argon2's own minimum of
// 8 KiB of memory per lane.
func (p HashParams) validate() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("%w: threads must be at least 1", ErrInvalidHashParams)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxHashMemory:
		return fmt.Errorf("%w: memory must be between 8 KiB per thread and %d KiB", ErrInvalidHashParams, MaxHashMemory)
	case p.Time < 1 || p.Time > MaxHashTime:
		return fmt.Errorf("%w: time must be between 1 and %d", ErrInvalidHashParams, MaxHashTime)
	case p.KeyLen < MinHashKeyLen || p.KeyLen > MaxHashKeyLen:
		return fmt.Errorf("%w: key length must be between %d and %d bytes", ErrInvalidHashParams, MinHashKeyLen, MaxHashKeyLen)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("%w: salt length must be between %d and %d bytes", ErrInvalidHashParams, MinSaltLen, MaxSaltLen)
	}
	return nil
}

// phcPrefix starts every hash this package writes or accepts.
const phcPrefix = "$argon2id$v=19$"

// passwordHash is a parsed argon2id PHC string.
type passwordHash struct {
	params HashParams // KeyLen and SaltLen are len(key) and len(salt)
	salt   []byte
	key    []byte
}

// newPasswordHash derives a hash of password with params and salt. It does
// the expensive work: call it through a hashLimiter.
func newPasswordHash(params HashParams, salt []byte, password string) passwordHash {
	pw := []byte(password)
	defer clear(pw)
	key := argon2.IDKey(pw, salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	params.SaltLen = uint32(len(salt))
	return passwordHash{params: params, salt: salt, key: key}
}

// String encodes h as a PHC string in the format of the reference argon2
// implementation:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>, with salt and
// key in standard base64 without padding.
func (h passwordHash) String() string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix,
		h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(h.salt),
		base64.RawStdEncoding.EncodeToString(h.key))
}

// matches reports, in constant time with respect to the key, whether
// password hashes to h. It does the expensive work: call it through a
// hashLimiter.
func (h passwordHash) matches(password string) bool {
	got := newPasswordHash(h.params, h.salt, password)
	return subtle.ConstantTimeCompare(got.key, h.key) == 1
}

// parsePasswordHash parses an argon2id v=19 PHC string strictly: exactly
// the fields m, t and p in that order, canonical decimal numbers, salt and
// key in unpadded standard base64, everything within the parameter bounds.
// The error wraps ErrMalformedHash and never quotes the input.
func parsePasswordHash(s string) (passwordHash, error) {
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		return passwordHash{}, fmt.Errorf("%w: not an argon2id v=19 PHC string", ErrMalformedHash)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return passwordHash{}, fmt.Errorf("%w: want parameters, salt and hash", ErrMalformedHash)
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return passwordHash{}, fmt.Errorf("%w: want exactly m, t and p parameters", ErrMalformedHash)
	}
	m, err := parsePHCParam(params[0], "m", 32)
	if err != nil {
		return passwordHash{}, err
	}
	t, err := parsePHCParam(params[1], "t", 32)
	if err != nil {
		return passwordHash{}, err
	}
	p, err := parsePHCParam(params[2], "p", 8)
	if err != nil {
		return passwordHash{}, err
	}
	salt, err := decodePHCBase64(fields[1])
	if err != nil {
		return passwordHash{}, fmt.Errorf("%w: bad salt encoding", ErrMalformedHash)
	}
	key, err := decodePHCBase64(fields[2])
	if err != nil {
		return passwordHash{}, fmt.Errorf("%w: bad hash encoding", ErrMalformedHash)
	}
	h := passwordHash{
		params: HashParams{
			Memory:  uint32(m),
			Time:    uint32(t),
			Threads: uint8(p),
			KeyLen:  uint32(len(key)),
			SaltLen: uint32(len(salt)),
		},
		salt: salt,
		key:  key,
	}
	if err := h.params.validate(); err != nil {
		return passwordHash{}, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return h, nil
}

// decodePHCBase64 decodes unpadded standard base64 and accepts only the
// canonical encoding: the decoder alone would skip '\r' and '\n'.
func decodePHCBase64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, errors.New("non-canonical base64")
	}
	return b, nil
}

// parsePHCParam parses "name=value" where value is a canonical unsigned
// decimal (no sign, no leading zeros) fitting in bits.
func parsePHCParam(field, name string, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(field, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s", ErrMalformedHash, name)
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, fmt.Errorf("%w: bad value for parameter %s", ErrMalformedHash, name)
	}
	return n, nil
}

// hashLimiter bounds the number of argon2 computations running at once.
// Each one holds Memory KiB, so without a bound a burst of logins could
// exhaust memory.
type hashLimiter struct {
	sem chan struct{}

	// Instrumentation, read by tests.
	inFlight    atomic.Int64 // computations running now
	maxInFlight atomic.Int64 // highest inFlight observed
	total       atomic.Int64 // computations started
	hook        func()       // if non-nil, called while in flight (tests only)

	waiting    atomic.Int64 // computations waiting for a slot
	maxWaiting int64        // beyond this many waiting, fail with ErrBusy
}

func newHashLimiter(n int) *hashLimiter {
	return &hashLimiter{sem: make(chan struct{}, n)}
}

// do runs f once a slot is free, or returns ctx's error if ctx is done
// first.
func (l *hashLimiter) do(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: waiting to hash password: %w", err)
	}
	if w := l.waiting.Add(1); l.maxWaiting > 0 && w > l.maxWaiting {
		l.waiting.Add(-1)
		return ErrBusy
	}
	select {
	case l.sem <- struct{}{}:
		l.waiting.Add(-1)
	case <-ctx.Done():
		l.waiting.Add(-1)
		return fmt.Errorf("users: waiting to hash password: %w", ctx.Err())
	}
	defer func() { <-l.sem }()

	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	l.total.Add(1)
	for {
		m := l.maxInFlight.Load()
		if n <= m || l.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if l.hook != nil {
		l.hook()
	}
	f()
	return nil
}

// hashPassword makes a new PHC hash of password with the Store's current
// parameters and a fresh salt.
func (s *Store) hashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, s.params.SaltLen)
	if err := s.readRand(salt); err != nil {
		return "", fmt.Errorf("users: generating salt: %w", err)
	}
	var h passwordHash
	if err := s.limiter.do(ctx, func() { h = newPasswordHash(s.params, salt, password) }); err != nil {
		return "", err
	}
	return h.String(), nil
}

// verifyPassword checks password against the PHC string encoded, using the
// parameters recorded in it. It returns the parsed hash so the caller can
// compare its parameters with the current ones.
func (s *Store) verifyPassword(ctx context.Context, encoded, password string) (bool, passwordHash, error) {
	h, err := parsePasswordHash(encoded)
	if err != nil {
		return false, passwordHash{}, err
	}
	var ok bool
	if err := s.limiter.do(ctx, func() { ok = h.matches(password) }); err != nil {
		return false, passwordHash{}, err
	}
	return ok, h, nil
}

// readRand fills b from the Store's random source. Reads are serialised
// because a caller-supplied Options.Rand need not be safe for concurrent
// use.
func (s *Store) readRand(b []byte) error {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	_, err := io.ReadFull(s.rand, b)
	return err
}
