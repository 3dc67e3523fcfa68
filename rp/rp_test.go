package rp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSafeRedirect(t *testing.T) {
	cases := map[string]string{
		"":                      "/",
		"/":                     "/",
		"/docs?x=1#y":           "/docs?x=1#y",
		"/a/b":                  "/a/b",
		"https://evil.example/": "/",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"\\\\evil.example":      "/",
		"javascript:alert(1)":   "/",
		"docs":                  "/",
		"/x\r\nSet-Cookie: a=b": "/",
		"/ok\tno":               "/",
		"http:/evil.example":    "/",
		"/%2F%2Fevil.example":   "/%2F%2Fevil.example",
	}
	for in, want := range cases {
		if got := safeRedirect(in); got != want {
			t.Errorf("safeRedirect(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOAuthErrorKeepsOnlyAllowedCharacters(t *testing.T) {
	got := oauthError("access_denied", "no <script>alert(1)</script>\n\x00here")
	if strings.ContainsAny(got, "<>\n\x00") {
		t.Errorf("oauthError kept unsafe characters: %q", got)
	}
	if !strings.HasPrefix(got, "access_denied (") {
		t.Errorf("oauthError = %q", got)
	}
	if long := oauthError("e", strings.Repeat("x", 1000)); len(long) > 320 {
		t.Errorf("description not bounded: %d bytes", len(long))
	}
}

func TestHandlerTransportServesOwnOriginOnly(t *testing.T) {
	var seen *http.Request
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Test", "1")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write(append([]byte("got:"), body...))
	})
	fallback := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusAccepted, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	tr := &HandlerTransport{Origin: "http://issuer.example:8080", Handler: h, Fallback: fallback}
	c := &http.Client{Transport: tr}
	resp, err := c.Post("http://issuer.example:8080/oidc/oauth/token?a=b", "text/plain", bytes.NewBufferString("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "got:hello" || resp.Header.Get("X-Test") != "1" {
		t.Errorf("in-process response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if seen.URL.Path != "/oidc/oauth/token" || seen.URL.RawQuery != "a=b" || seen.Host != "issuer.example:8080" || seen.RequestURI == "" {
		t.Errorf("handler saw %s %q host %q", seen.URL, seen.RequestURI, seen.Host)
	}
	resp, err = c.Get("http://elsewhere.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("another origin did not go to the fallback: %d", resp.StatusCode)
	}
	panicky := &HandlerTransport{Origin: "http://x", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })}
	if _, err := (&http.Client{Transport: panicky}).Get("http://x/"); err == nil {
		t.Error("a panicking handler did not become an error")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckDomain(t *testing.T) {
	p := &RelyingParty{domain: "example.com"}
	for email, ok := range map[string]bool{
		"a@example.com":      true,
		"A@EXAMPLE.COM":      true,
		"a@sub.example.com":  false,
		"a@badexample.com":   false,
		"a@example.com.evil": false,
		"":                   false,
	} {
		err := p.checkDomain(Identity{Email: email, EmailVerified: true})
		if (err == nil) != ok {
			t.Errorf("checkDomain(%q) = %v, want ok=%v", email, err, ok)
		}
	}
	if err := (&RelyingParty{}).checkDomain(Identity{}); err != nil {
		t.Errorf("no domain policy refused: %v", err)
	}
	// An external provider's unverified email proves nothing…
	if err := p.checkDomain(Identity{Email: "a@example.com"}); err == nil || !strings.Contains(err.Error(), "verified") {
		t.Errorf("unverified email accepted: %v", err)
	}
	// …except an Entra ID user principal name (a verified domain of its tenant)…
	if err := p.checkDomain(Identity{Email: "a@example.com", EmailSource: "preferred_username", TenantID: "t"}); err != nil {
		t.Errorf("Entra UPN refused: %v", err)
	}
	// …and the built-in issuer, which enforces the domain itself.
	trusted := &RelyingParty{domain: "example.com", cfg: Config{TrustEmailDomain: true}}
	if err := trusted.checkDomain(Identity{Email: "a@example.com"}); err != nil {
		t.Errorf("built-in issuer's email refused: %v", err)
	}
}

func TestSessionCodecRejectsOtherKeysAndPurposes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	mk := func(secret string) *RelyingParty {
		s, _ := newJWTCodec(deriveKey([]byte(secret), "session"))
		tx, _ := newJWTCodec(deriveKey([]byte(secret), "transaction"))
		return &RelyingParty{session: s, tx: tx, publicURL: "http://localhost:8080", sessionLife: time.Hour,
			now: func() time.Time { return now }, rand: bytes.NewReader(bytes.Repeat([]byte{7}, 4096))}
	}
	a, b := mk(strings.Repeat("a", 32)), mk(strings.Repeat("b", 32))
	rec := &recorder{header: http.Header{}}
	if err := a.setSession(rec, Identity{Subject: "u1", Email: "u@example.com", Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	cookie := (&http.Response{Header: rec.header}).Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Expires.IsZero() {
		t.Errorf("session cookie attributes: %+v", cookie)
	}
	req := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookie)
		return r
	}
	if id, err := a.Session(req()); err != nil || id.Subject != "u1" || !id.HasRole("admin") {
		t.Fatalf("own cookie: %+v %v", id, err)
	}
	if _, err := b.Session(req()); err == nil {
		t.Error("a cookie signed with another jwtSecret was accepted")
	}
	var txn transaction
	if err := a.tx.decode(cookie.Value, &txn); err == nil {
		t.Error("a session cookie decoded as a login transaction")
	}
	now = now.Add(time.Hour + 2*cookieLeeway)
	if _, err := a.Session(req()); err == nil {
		t.Error("an expired session was accepted")
	}
}

func TestCookiesAreSecureForHTTPS(t *testing.T) {
	for _, secure := range []bool{false, true} {
		c := (&RelyingParty{secure: secure}).cookie(SessionCookie, "/", "v", time.Now().Add(time.Hour))
		if c.Secure != secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("secure=%v: cookie %+v", secure, c)
		}
	}
}

// BenchmarkSession measures the cost of checking a session cookie, which
// every backend request pays.
func BenchmarkSession(b *testing.B) {
	s, _ := newJWTCodec(deriveKey([]byte(strings.Repeat("k", 32)), "session"))
	p := &RelyingParty{session: s, publicURL: "http://localhost:8080", sessionLife: time.Hour, now: time.Now,
		rand: bytes.NewReader(bytes.Repeat([]byte{1}, 64))}
	rec := &recorder{header: http.Header{}}
	if err := p.setSession(rec, Identity{Subject: "u1", Email: "u@example.com", Name: "U", Roles: []string{"viewer"}}); err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie((&http.Response{Header: rec.header}).Cookies()[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Session(r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTooManyGroupsKeepTheSession: a session whose groups would overflow
// the 4 KiB cookie limit is kept without them.
func TestTooManyGroupsKeepTheSession(t *testing.T) {
	s, _ := newJWTCodec(deriveKey([]byte(strings.Repeat("k", 32)), "session"))
	p := &RelyingParty{session: s, publicURL: "http://localhost:8080", sessionLife: time.Hour, now: time.Now,
		log: slog.New(slog.DiscardHandler), rand: bytes.NewReader(bytes.Repeat([]byte{1}, 64))}
	groups := make([]string, 200)
	for n := range groups {
		groups[n] = fmt.Sprintf("00000000-0000-0000-0000-%012d", n)
	}
	rec := &recorder{header: http.Header{}}
	if err := p.setSession(rec, Identity{Subject: "u1", Email: "u@example.com", Groups: groups}); err != nil {
		t.Fatal(err)
	}
	cookie := (&http.Response{Header: rec.header}).Cookies()[0]
	if len(cookie.Value) > maxCookieBytes {
		t.Fatalf("cookie of %d bytes", len(cookie.Value))
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	id, err := p.Session(r)
	if err != nil || id.Subject != "u1" || len(id.Groups) != 0 {
		t.Errorf("session: %+v %v", id, err)
	}
	// A few groups fit and are kept.
	rec = &recorder{header: http.Header{}}
	p.rand = bytes.NewReader(bytes.Repeat([]byte{2}, 64))
	_ = p.setSession(rec, Identity{Subject: "u1", Groups: groups[:3]})
	r, _ = http.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie((&http.Response{Header: rec.header}).Cookies()[0])
	if id, _ := p.Session(r); len(id.Groups) != 3 {
		t.Errorf("groups that fit were dropped: %v", id.Groups)
	}
}
