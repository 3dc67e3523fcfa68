package users

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	long := func(n int) string { // an address of exactly n bytes
		const domain = "@example.com"
		return strings.Repeat("a", n-len(domain)) + domain
	}
	cases := []struct {
		in, want string // want "" means ErrInvalidEmail
	}{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM \t\n", "alice@example.com"},
		{"ALICE+tag@EXAMPLE.CO.UK", "alice+tag@example.co.uk"},
		{"a@b.co", "a@b.co"},
		{"first.last@sub.example.com", "first.last@sub.example.com"},
		{"JOSÉ@Exämple.com", "josé@exämple.com"},
		{long(254), long(254)},
		{long(255), ""},
		{"", ""},
		{"   ", ""},
		{"alice", ""},
		{"alice@", ""},
		{"@example.com", ""},
		{"alice@@example.com", ""},
		{"a@b@example.com", ""},
		{"alice@localhost", ""},
		{"alice@example", ""},
		{"alice@.com", ""},
		{"alice@example.", ""},
		{"alice@example..com", ""},
		{"alice@.", ""},
		{"alice@exa mple.com", ""},
		{"alice@example.com extra", ""},
		{"ali ce@example.com", ""},
		{"alice@exa\tmple.com", ""},
		{"ali\x00ce@example.com", ""},
		{"alice@example.com\x00", ""},
		{"ali\rce@example.com", ""},
		{"alice@exam\u00a0ple.com", ""}, // no-break space
		{"ali\xffce@example.com", ""},   // invalid UTF-8
	}
	for _, c := range cases {
		got, err := NormalizeEmail(c.in)
		if c.want == "" {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", c.in, got, err)
			}
			if got != "" {
				t.Errorf("NormalizeEmail(%q) returned %q with an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		// Normalisation is idempotent.
		if again, err := NormalizeEmail(got); err != nil || again != got {
			t.Errorf("NormalizeEmail(%q) = %q, %v; not idempotent", got, again, err)
		}
	}
}

func TestNormalizeEmailErrorDoesNotQuoteInput(t *testing.T) {
	_, err := NormalizeEmail("hunter2-is-my-password")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v quotes the input", err)
	}
}

func TestDomainPolicy(t *testing.T) {
	policy, err := normalizeDomainPolicy("  Example.COM ")
	if err != nil || policy != "example.com" {
		t.Fatalf("normalizeDomainPolicy = %q, %v", policy, err)
	}
	if p, err := normalizeDomainPolicy(""); err != nil || p != "" {
		t.Errorf("empty policy = %q, %v", p, err)
	}
	for _, bad := range []string{"@example.com", "localhost", "example..com", "exa mple.com", "a@example.com"} {
		if _, err := normalizeDomainPolicy(bad); err == nil {
			t.Errorf("normalizeDomainPolicy(%q): want error", bad)
		}
	}
	cases := []struct {
		email string
		ok    bool
	}{
		{"a@example.com", true},
		{"a@sub.example.com", false},
		{"a@badexample.com", false},
		{"a@example.com.evil.org", false},
		{"a@example.co", false},
		{"example.com@evil.org", false},
	}
	for _, c := range cases {
		if got := domainAllowed(policy, c.email); got != c.ok {
			t.Errorf("domainAllowed(%q, %q) = %t, want %t", policy, c.email, got, c.ok)
		}
		if !domainAllowed("", c.email) {
			t.Errorf("empty policy refused %q", c.email)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	for d, want := range map[string]string{
		"example.com":         "",
		"sub.example.co.uk":   "",
		"ex-ample.com":        "",
		"@example.com":        `"@"`,
		"https://example.com": "scheme",
		"example.com:443":     "scheme",
		"exa mple.com":        "spaces",
		"localhost":           "dot",
		"example..com":        "empty or too long label",
		"-example.com":        `starting or ending with "-"`,
		"Example.com":         `character 'E'`,
		"ex_ample.com":        `character '_'`,
	} {
		err := CheckDomain(d)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckDomain(%q) = %v, want %q", d, err, want)
		}
	}
}
