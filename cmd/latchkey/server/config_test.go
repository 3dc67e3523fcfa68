package server

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testJWTSecret = "s3cr3t-jwt-value-0123456789abcdefghijklmnop" // 43 bytes

// writeValues writes content to a values.yaml in a temporary directory.
func writeValues(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// env returns a getenv function backed by m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// lineOf returns the 1-based line of the first line containing s.
func lineOf(t *testing.T, content, s string) int {
	t.Helper()
	for i, l := range strings.Split(content, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in content", s)
	return 0
}

func mustContain(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	for _, getenv := range []func(string) (string, bool){nil, env(nil)} {
		c, err := Load("", getenv)
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			BasicAuth: BasicAuth{Enabled: true},
			OIDC:      OIDC{VerifySSL: true},
			Listen:    "127.0.0.1:8080",
			PublicURL: "http://localhost:8080",
			DataDir:   "./latchkey-data",
			Signup:    "open",
		}
		if !reflect.DeepEqual(c, want) || !reflect.DeepEqual(Default(), want) {
			t.Errorf("Load(\"\") = %v\nwant %v", c, want)
		}
		if err := Default().Validate(); err != nil {
			t.Errorf("Default() invalid: %v", err)
		}
	}
}

func TestLoadEmptyFiles(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n", "---\n", "~\n", "config:\nlatchkey:\n", "config:\n  authentication:\n"} {
		c, err := Load(writeValues(t, content), nil)
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%q: got %v, want defaults", content, c)
		}
	}
}

const fullValues = `# Helm values for latchkey
replicaCount: 2
image:
  repository: ghcr.io/latchkey-dev/latchkey
  tag: "1.2.3"
  pullPolicy: IfNotPresent
ingress:
  enabled: true
  hosts:
    - host: login.example.com
      paths: [{path: /, pathType: Prefix}]
resources:
  limits: {cpu: 500m, memory: 128Mi}
redirects: &redirects
  - "https://app.example.com/callback"
  - "http://127.0.0.1:9999/callback"
config:
  someOtherThing: {anything: [1, 2, 3]}
  authentication:
    basicAuth:
      enabled: true
      validEmailDomain: "@Example.COM"
      jwtSecret: "` + testJWTSecret + `"
      secret: "existing-k8s-secret"
    oidc:
      enabled: false
      discoveryUrl: "https://login.microsoftonline.com/TENANT/v2.0/.well-known/openid-configuration"
      clientId: "entra-client"
      clientSecret: "entra-client-secret-value"
      secret: "existing-k8s-secret"
      verifySsl: false
latchkey:
  listen: "0.0.0.0:9090"
  publicUrl: "https://login.example.com/"
  dataDir: /var/lib/latchkey
  clients:
    - clientId: cli
      # clientSecret absent = public client (PKCE required)
      redirectUris: ["http://127.0.0.1:9999/callback"]
      postLogoutRedirectUris: ["http://127.0.0.1:9999/"]
    - clientId: web
      clientSecret: web-client-secret-value
      redirectUris: *redirects
      postLogoutRedirectUris:
    - clientId: 12345
      redirectUris: [com.example.app:/oauth2redirect]
`

func TestLoadFullValues(t *testing.T) {
	c, err := Load(writeValues(t, fullValues), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		BasicAuth: BasicAuth{
			Enabled:          true,
			ValidEmailDomain: "example.com",
			JWTSecret:        testJWTSecret,
			Secret:           "existing-k8s-secret",
		},
		OIDC: OIDC{
			DiscoveryURL: "https://login.microsoftonline.com/TENANT/v2.0/.well-known/openid-configuration",
			ClientID:     "entra-client",
			ClientSecret: "entra-client-secret-value",
			Secret:       "existing-k8s-secret",
			VerifySSL:    false,
		},
		Listen:    "0.0.0.0:9090",
		PublicURL: "https://login.example.com",
		DataDir:   "/var/lib/latchkey",
		Signup:    "open",
		Clients: []Client{
			{
				ClientID:               "cli",
				RedirectURIs:           []string{"http://127.0.0.1:9999/callback"},
				PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/"},
			},
			{
				ClientID:     "web",
				ClientSecret: "web-client-secret-value",
				RedirectURIs: []string{"https://app.example.com/callback", "http://127.0.0.1:9999/callback"},
			},
			{
				ClientID:     "12345",
				RedirectURIs: []string{"com.example.app:/oauth2redirect"},
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %v\nwant %v", c, want)
		// Redacted String hides secret differences; compare them too.
		if c.BasicAuth.JWTSecret != want.BasicAuth.JWTSecret || c.OIDC.ClientSecret != want.OIDC.ClientSecret {
			t.Error("secrets differ")
		}
	}
}

func TestLoadBasicAuthDisabledHonoured(t *testing.T) {
	content := "config:\n  authentication:\n    basicAuth:\n      enabled: false\n"
	_, err := Load(writeValues(t, content), nil)
	mustContain(t, err, "config.authentication: basicAuth.enabled and oidc.enabled are both false; enable exactly one")

	content = "config:\n  authentication:\n    basicAuth: {enabled: false}\n    oidc: {enabled: true}\n"
	_, err = Load(writeValues(t, content), nil)
	mustContain(t, err, "config.authentication.oidc.discoveryUrl (or OIDC_DISCOVERY_URL): required in OIDC mode")
	if strings.Contains(err.Error(), "both") {
		t.Errorf("unexpected exactly-one error: %v", err)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	cases := []struct {
		name, content, marker, path, known string
	}{
		{
			name:    "basicAuth",
			content: "config:\n  authentication:\n    basicAuth:\n      enabled: true\n      jwtSecert: x\n",
			marker:  "jwtSecert", path: "config.authentication.basicAuth.jwtSecert",
			known: "known keys: enabled, validEmailDomain, jwtSecret, secret",
		},
		{
			name:    "authentication",
			content: "image: {tag: x}\nconfig:\n  authentication:\n    basicauth: {}\n",
			marker:  "basicauth", path: "config.authentication.basicauth",
			known: "known keys: basicAuth, oidc",
		},
		{
			name:    "oidc",
			content: "config:\n  authentication:\n    oidc:\n      discoveryURL: https://x\n",
			marker:  "discoveryURL", path: "config.authentication.oidc.discoveryURL",
			known: "known keys: enabled, discoveryUrl, clientId, clientSecret, secret, verifySsl",
		},
		{
			name:    "latchkey",
			content: "latchkey:\n  listen: :8080\n  public_url: http://x\n",
			marker:  "public_url", path: "latchkey.public_url",
			known: "known keys: listen, publicUrl, dataDir, signup, trustedProxies, clients",
		},
		{
			name:    "client",
			content: "latchkey:\n  clients:\n    - clientId: a\n      redirectUris: [http://x/cb]\n    - clientId: b\n      redirectUri: http://x/cb\n",
			marker:  "redirectUri:", path: "latchkey.clients[1].redirectUri",
			known: "known keys: clientId, clientSecret, redirectUris, postLogoutRedirectUris",
		},
		{
			name:    "merge key",
			content: "base: &b {enabled: true}\nconfig:\n  authentication:\n    basicAuth:\n      <<: *b\n",
			marker:  "<<", path: "config.authentication.basicAuth.<<",
			known: "known keys: enabled,",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeValues(t, tc.content), nil)
			line := lineOf(t, tc.content, tc.marker)
			mustContain(t, err, fmt.Sprintf("config: unknown key %q (line %d); ", tc.path, line), tc.known)
		})
	}

	// The exact message from the documentation.
	content := "config:\n  authentication:\n    basicAuth:\n      enabled: true\n      jwtSecert: x\n"
	_, err := Load(writeValues(t, content), nil)
	want := `config: unknown key "config.authentication.basicAuth.jwtSecert" (line 5); known keys: enabled, validEmailDomain, jwtSecret, secret`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	// Several problems are all reported.
	content = "config:\n  authentication:\n    basicAuth: {foo: 1}\n    oidc: {bar: 2}\nlatchkey: {baz: 3}\n"
	_, err = Load(writeValues(t, content), nil)
	mustContain(t, err, `"config.authentication.basicAuth.foo" (line 3)`, `"config.authentication.oidc.bar" (line 4)`, `"latchkey.baz" (line 5)`)
}

func TestLoadIgnoresUnrelatedKeys(t *testing.T) {
	content := "image: {tag: x}\nunknownTop: 1\nconfig:\n  someOtherThing: {whatever: true}\n  authentication:\n    basicAuth: {enabled: true}\n"
	if _, err := Load(writeValues(t, content), nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDuplicateKey(t *testing.T) {
	content := "config:\n  authentication:\n    basicAuth:\n      jwtSecret: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n      jwtSecret: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	_, err := Load(writeValues(t, content), nil)
	mustContain(t, err, `duplicate key "config.authentication.basicAuth.jwtSecret" (line 5); first defined on line 4`)
	if strings.Contains(err.Error(), "aaaa") || strings.Contains(err.Error(), "bbbb") {
		t.Errorf("error leaks value: %v", err)
	}

	content = "latchkey: {listen: \":1\"}\nlatchkey: {listen: \":2\"}\n"
	_, err = Load(writeValues(t, content), nil)
	mustContain(t, err, `duplicate key "latchkey" (line 2)`)
}

func TestLoadWrongType(t *testing.T) {
	cases := []struct {
		name, content, marker, path, want string
	}{
		{"bool as string", "config:\n  authentication:\n    basicAuth:\n      enabled: \"yes\"\n", "enabled", "config.authentication.basicAuth.enabled", "expected a boolean (true or false), got a string"},
		{"bool as yes", "config:\n  authentication:\n    oidc:\n      verifySsl: yes\n", "verifySsl", "config.authentication.oidc.verifySsl", "expected a boolean"},
		{"string as mapping", "latchkey:\n  listen: {host: x}\n", "listen", "latchkey.listen", "expected a string, got a mapping"},
		{"secret as bool", "config:\n  authentication:\n    basicAuth:\n      jwtSecret: true\n", "jwtSecret", "config.authentication.basicAuth.jwtSecret", "expected a string, got a boolean"},
		{"clients as string", "latchkey:\n  clients: cli\n", "clients", "latchkey.clients", "expected a list of clients, got a string"},
		{"client as string", "latchkey:\n  clients:\n    - cli\n", "- cli", "latchkey.clients[0]", "expected a mapping"},
		{"uris as string", "latchkey:\n  clients:\n    - clientId: a\n      redirectUris: http://x/cb\n", "redirectUris", "latchkey.clients[0].redirectUris", "expected a list of strings, got a string"},
		{"uri as list", "latchkey:\n  clients:\n    - clientId: a\n      redirectUris:\n        - [http://x/cb]\n", "- [", "latchkey.clients[0].redirectUris[0]", "expected a string, got a list"},
		{"authentication as list", "config:\n  authentication: []\n", "authentication", "config.authentication", "expected a mapping, got a list"},
		{"basicAuth as number", "config:\n  authentication:\n    basicAuth: 3\n", "basicAuth", "config.authentication.basicAuth", "expected a mapping, got an integer"},
		{"latchkey as string", "latchkey: hello\n", "latchkey", "latchkey", "expected a mapping, got a string"},
		{"config as list", "config: [1]\n", "config", "config", "expected a mapping, got a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeValues(t, tc.content), nil)
			mustContain(t, err, fmt.Sprintf("%q (line %d): %s", tc.path, lineOf(t, tc.content, tc.marker), tc.want))
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope", "values.yaml")
	_, err := Load(missing, nil)
	mustContain(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}

	bad := writeValues(t, "config:\n  authentication: [\n")
	_, err = Load(bad, nil)
	mustContain(t, err, "config: parse "+bad)

	multi := writeValues(t, "latchkey: {}\n---\nlatchkey: {}\n")
	_, err = Load(multi, nil)
	mustContain(t, err, "more than one YAML document")

	scalar := writeValues(t, "just a string\n")
	_, err = Load(scalar, nil)
	mustContain(t, err, "top level must be a mapping")
}

func TestEnvOverridesFile(t *testing.T) {
	content := `config:
  authentication:
    basicAuth:
      enabled: true
      validEmailDomain: file.example
      jwtSecret: file-secret-file-secret-file-secret-0000
    oidc:
      discoveryUrl: https://file.example/.well-known/openid-configuration
      clientId: file-client
      clientSecret: file-client-secret
      verifySsl: true
latchkey:
  listen: "127.0.0.1:1111"
  publicUrl: "http://file.example"
  dataDir: /file
`
	path := writeValues(t, content)
	c, err := Load(path, env(map[string]string{
		"BYOC_JWT_SECRET":         testJWTSecret,
		"BYOC_VALID_EMAIL_DOMAIN": "Env.Example",
		"OIDC_DISCOVERY_URL":      "https://env.example/.well-known/openid-configuration",
		"OIDC_CLIENT_ID":          "env-client",
		"OIDC_CLIENT_SECRET":      "env-client-secret",
		"OIDC_VERIFY_SSL":         "no",
		"LATCHKEY_LISTEN":         ":2222",
		"LATCHKEY_PUBLIC_URL":     "https://env.example/",
		"LATCHKEY_DATA_DIR":       "/env",
		"UNRELATED":               "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		BasicAuth: BasicAuth{Enabled: true, ValidEmailDomain: "env.example", JWTSecret: testJWTSecret},
		OIDC: OIDC{
			DiscoveryURL: "https://env.example/.well-known/openid-configuration",
			ClientID:     "env-client",
			ClientSecret: "env-client-secret",
			VerifySSL:    false,
		},
		Listen:    ":2222",
		PublicURL: "https://env.example",
		DataDir:   "/env",
		Signup:    "open",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %v\nwant %v", c, want)
	}

	// The enable switches: env turns basic auth off and OIDC on.
	c, err = Load(path, env(map[string]string{"LATCHKEY_BASIC_AUTH_ENABLED": "false", "LATCHKEY_OIDC_ENABLED": "TRUE",
		"OIDC_DISCOVERY_URL": "https://login.example/t/v2.0/.well-known/openid-configuration", "OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": "s"}))
	if err != nil || !c.OIDC.Enabled || c.BasicAuth.Enabled {
		t.Errorf("env switch to OIDC mode: %v %v", c, err)
	}

	// A variable set to the empty string still overrides.
	_, err = Load(path, env(map[string]string{"LATCHKEY_DATA_DIR": ""}))
	mustContain(t, err, "latchkey.dataDir (or LATCHKEY_DATA_DIR): must not be empty")
}

func TestEnvVarsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, ev := range EnvVars {
		if seen[ev.Name] {
			t.Errorf("duplicate %s", ev.Name)
		}
		seen[ev.Name] = true
		if !strings.HasPrefix(ev.Key, "config.authentication.") && !strings.HasPrefix(ev.Key, "latchkey.") {
			t.Errorf("%s: odd key %q", ev.Name, ev.Key)
		}
		// Every entry has a handler and changes the configuration.
		for _, val := range []string{"false", "true"} {
			c := Default()
			c.OIDC.VerifySSL = false
			c.BasicAuth.Enabled = false
			if err := applyEnv(&c, env(map[string]string{ev.Name: val})); err != nil {
				t.Errorf("%s=%s: %v", ev.Name, val, err)
			}
			d := Default()
			d.OIDC.VerifySSL = false
			d.BasicAuth.Enabled = false
			if val == "true" && reflect.DeepEqual(c, d) {
				t.Errorf("%s=%s changed nothing", ev.Name, val)
			}
		}
	}
	for _, name := range []string{
		"BYOC_JWT_SECRET", "BYOC_VALID_EMAIL_DOMAIN", "OIDC_DISCOVERY_URL", "OIDC_CLIENT_ID",
		"OIDC_CLIENT_SECRET", "OIDC_VERIFY_SSL", "LATCHKEY_LISTEN", "LATCHKEY_PUBLIC_URL",
		"LATCHKEY_DATA_DIR", "LATCHKEY_BASIC_AUTH_ENABLED", "LATCHKEY_OIDC_ENABLED", "OIDC_CA_FILE", "OIDC_ALLOWED_TENANTS", "LATCHKEY_SIGNUP", "LATCHKEY_TRUSTED_PROXIES",
	} {
		if !seen[name] {
			t.Errorf("EnvVars lacks %s", name)
		}
	}
}

func TestOIDCVerifySSLEnv(t *testing.T) {
	for val, want := range map[string]bool{
		"true": true, "TRUE": true, "True": true, "1": true, "yes": true, "YES": true, " yes ": true,
		"false": false, "FALSE": false, "0": false, "no": false, "No": false,
	} {
		c, err := Load("", env(map[string]string{"OIDC_VERIFY_SSL": val}))
		if err != nil {
			t.Errorf("%q: %v", val, err)
			continue
		}
		if c.OIDC.VerifySSL != want {
			t.Errorf("%q: VerifySSL = %t, want %t", val, c.OIDC.VerifySSL, want)
		}
	}
	for _, val := range []string{"", "maybe", "2", "on", "off", "y", "truee"} {
		_, err := Load("", env(map[string]string{"OIDC_VERIFY_SSL": val}))
		mustContain(t, err, "OIDC_VERIFY_SSL", "true, false, 1, 0, yes, no")
	}
	for _, name := range []string{"LATCHKEY_BASIC_AUTH_ENABLED", "LATCHKEY_OIDC_ENABLED"} {
		_, err := Load("", env(map[string]string{name: "enabled"}))
		mustContain(t, err, name, "true, false, 1, 0, yes, no")
	}
}

func validConfig() Config {
	c := Default()
	c.BasicAuth.ValidEmailDomain = "example.com"
	c.BasicAuth.JWTSecret = testJWTSecret
	c.Clients = []Client{{
		ClientID:               "cli",
		RedirectURIs:           []string{"http://127.0.0.1:9999/callback"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/"},
	}}
	return c
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}

	bad := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"both enabled", func(c *Config) { c.OIDC.Enabled = true },
			[]string{"config.authentication: basicAuth.enabled and oidc.enabled are both true; enable exactly one"}},
		{"neither enabled", func(c *Config) { c.BasicAuth.Enabled = false },
			[]string{"config.authentication: basicAuth.enabled and oidc.enabled are both false; enable exactly one"}},
		{"oidc missing everything", func(c *Config) { c.BasicAuth.Enabled, c.OIDC.Enabled = false, true },
			[]string{"oidc.discoveryUrl (or OIDC_DISCOVERY_URL): required", "oidc.clientId (or OIDC_CLIENT_ID): required", "oidc.clientSecret (or OIDC_CLIENT_SECRET): required"}},
		{"oidc discovery base only", oidcMode("https://login.microsoftonline.com/contoso.com/v2.0"),
			[]string{"must end in .well-known/openid-configuration; you most likely meant https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration"}},
		{"oidc authorize endpoint pasted", oidcMode("https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize"),
			[]string{"you most likely meant https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration"}},
		{"oidc trailing slash", oidcMode("https://idp.example/.well-known/openid-configuration/"),
			[]string{"you most likely meant https://idp.example/.well-known/openid-configuration"}},
		{"oidc http", oidcMode("http://idp.example/.well-known/openid-configuration"),
			[]string{"uses http; the provider must be reached over https"}},
		{"oidc caFile missing", func(c *Config) {
			oidcMode("https://idp.example/.well-known/openid-configuration")(c)
			c.OIDC.CAFile = "/no/such/ca.pem"
		}, []string{"oidc.caFile (or OIDC_CA_FILE): cannot read \"/no/such/ca.pem\""}},

		{"publicUrl empty", func(c *Config) { c.PublicURL = "" }, []string{"latchkey.publicUrl (or LATCHKEY_PUBLIC_URL)", "must not be empty"}},
		{"publicUrl relative", func(c *Config) { c.PublicURL = "/login" }, []string{"latchkey.publicUrl", "absolute http:// or https://"}},
		{"publicUrl no scheme", func(c *Config) { c.PublicURL = "login.example.com" }, []string{"latchkey.publicUrl", "absolute"}},
		{"publicUrl ftp", func(c *Config) { c.PublicURL = "ftp://login.example.com" }, []string{"latchkey.publicUrl", "http:// or https://"}},
		{"publicUrl no host", func(c *Config) { c.PublicURL = "https:///x" }, []string{"latchkey.publicUrl", "with a host"}},
		{"publicUrl query", func(c *Config) { c.PublicURL = "https://login.example.com?x=1" }, []string{"latchkey.publicUrl", "query"}},
		{"publicUrl empty query", func(c *Config) { c.PublicURL = "https://login.example.com/?" }, []string{"latchkey.publicUrl", "query"}},
		{"publicUrl fragment", func(c *Config) { c.PublicURL = "https://login.example.com/#" }, []string{"latchkey.publicUrl", "fragment"}},
		{"publicUrl path", func(c *Config) { c.PublicURL = "https://login.example.com/auth" }, []string{"latchkey.publicUrl", `must not have a path (got "/auth")`, "root"}},
		{"publicUrl double slash", func(c *Config) { c.PublicURL = "https://login.example.com//" }, []string{"latchkey.publicUrl", "path"}},
		{"publicUrl userinfo", func(c *Config) { c.PublicURL = "https://user:pw@login.example.com" }, []string{"latchkey.publicUrl", "user name or password"}},
		{"publicUrl bad port", func(c *Config) { c.PublicURL = "https://login.example.com:http" }, []string{"latchkey.publicUrl", "not a valid URL"}},

		{"listen no port", func(c *Config) { c.Listen = "127.0.0.1" }, []string{"latchkey.listen (or LATCHKEY_LISTEN)", "host:port"}},
		{"listen named port", func(c *Config) { c.Listen = "127.0.0.1:http" }, []string{"latchkey.listen", "port must be a number"}},
		{"listen port range", func(c *Config) { c.Listen = ":65536" }, []string{"latchkey.listen", "port must be a number"}},
		{"listen empty", func(c *Config) { c.Listen = "" }, []string{"latchkey.listen", "host:port"}},

		{"dataDir", func(c *Config) { c.DataDir = "" }, []string{"latchkey.dataDir (or LATCHKEY_DATA_DIR): must not be empty"}},

		{"domain email", func(c *Config) { c.BasicAuth.ValidEmailDomain = "bob@example.com" }, []string{"config.authentication.basicAuth.validEmailDomain (or BYOC_VALID_EMAIL_DOMAIN)", "@", "example.com"}},
		{"domain scheme", func(c *Config) { c.BasicAuth.ValidEmailDomain = "https://example.com" }, []string{"validEmailDomain", "scheme"}},
		{"domain no dot", func(c *Config) { c.BasicAuth.ValidEmailDomain = "localhost" }, []string{"validEmailDomain", "dot"}},
		{"domain space", func(c *Config) { c.BasicAuth.ValidEmailDomain = "example .com" }, []string{"validEmailDomain", "spaces"}},
		{"domain empty label", func(c *Config) { c.BasicAuth.ValidEmailDomain = "example..com" }, []string{"validEmailDomain", "label"}},
		{"domain only at", func(c *Config) { c.BasicAuth.ValidEmailDomain = "@" }, []string{"validEmailDomain"}},

		{"jwtSecret short", func(c *Config) { c.BasicAuth.JWTSecret = strings.Repeat("x", 31) },
			[]string{"config.authentication.basicAuth.jwtSecret (or BYOC_JWT_SECRET): too short (31 bytes); use at least 32 random bytes, e.g. openssl rand -base64 48"}},

		{"client id empty", func(c *Config) { c.Clients[0].ClientID = "" }, []string{"latchkey.clients[0].clientId: must not be empty"}},
		{"client id reserved", func(c *Config) { c.Clients[0].ClientID = "latchkey" }, []string{"latchkey.clients[0].clientId", "reserved", "built-in backend client"}},
		{"client id reserved case", func(c *Config) { c.Clients[0].ClientID = "LatchKey" }, []string{"latchkey.clients[0].clientId", "reserved"}},
		{"client id duplicate", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, []string{"latchkey.clients[1].clientId", `"cli" is already used by latchkey.clients[0]`}},
		{"redirect none", func(c *Config) { c.Clients[0].RedirectURIs = nil }, []string{"latchkey.clients[0].redirectUris: at least one"}},
		{"redirect relative", func(c *Config) { c.Clients[0].RedirectURIs = []string{"/callback"} }, []string{"latchkey.clients[0].redirectUris[0]", "not an absolute URL"}},
		{"redirect no host", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https:/callback"} }, []string{"latchkey.clients[0].redirectUris[0]", "no host"}},
		{"redirect fragment", func(c *Config) {
			c.Clients[0].RedirectURIs = []string{"http://127.0.0.1:9999/callback", "https://app.example.com/cb#x"}
		}, []string{"latchkey.clients[0].redirectUris[1]", "fragment"}},
		{"redirect unparsable", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://[::1/cb"} }, []string{"latchkey.clients[0].redirectUris[0]", "not a valid URL"}},
		{"post logout relative", func(c *Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"/bye"} }, []string{"latchkey.clients[0].postLogoutRedirectUris[0]", "not an absolute URL"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			mustContain(t, c.Validate(), tc.want...)
		})
	}

	good := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"publicUrl slash", func(c *Config) { c.PublicURL = "https://login.example.com/" }},
		{"publicUrl port", func(c *Config) { c.PublicURL = "https://login.example.com:8443" }},
		{"publicUrl ipv6", func(c *Config) { c.PublicURL = "http://[::1]:8080" }},
		{"listen any", func(c *Config) { c.Listen = ":8080" }},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:8080" }},
		{"domain at upper", func(c *Config) { c.BasicAuth.ValidEmailDomain = "@Example.COM" }},
		{"domain unset", func(c *Config) { c.BasicAuth.ValidEmailDomain = "" }},
		{"jwtSecret unset", func(c *Config) { c.BasicAuth.JWTSecret = "" }},
		{"jwtSecret 32", func(c *Config) { c.BasicAuth.JWTSecret = strings.Repeat("x", 32) }},
		{"confidential client", func(c *Config) { c.Clients[0].ClientSecret = "whatever" }},
		{"native redirect", func(c *Config) { c.Clients[0].RedirectURIs = []string{"com.example.app:/oauth2redirect"} }},
		{"no clients", func(c *Config) { c.Clients = nil }},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}
}

func TestValidateJoinsErrors(t *testing.T) {
	c := validConfig()
	c.Listen = "nope"
	c.DataDir = ""
	c.Clients[0].ClientID = BackendClientID
	err := c.Validate()
	mustContain(t, err, "latchkey.listen", "latchkey.dataDir", "latchkey.clients[0].clientId")
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Errorf("%d errors, want 3: %v", n, err)
	}
}

func TestLoadNormalizes(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"BYOC_VALID_EMAIL_DOMAIN": "@Example.COM",
		"LATCHKEY_PUBLIC_URL":     "https://Login.example.com/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BasicAuth.ValidEmailDomain != "example.com" {
		t.Errorf("ValidEmailDomain = %q", c.BasicAuth.ValidEmailDomain)
	}
	if c.PublicURL != "https://Login.example.com" {
		t.Errorf("PublicURL = %q", c.PublicURL)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("normalized config invalid: %v", err)
	}
}

func TestSecretsRedacted(t *testing.T) {
	const (
		jwt          = "JWT-SECRET-do-not-print-0123456789abcdef"
		oidcSecret   = "OIDC-SECRET-do-not-print"
		clientSecret = "CLIENT-SECRET-do-not-print"
	)
	secrets := []string{jwt, oidcSecret, clientSecret}
	c := validConfig()
	c.BasicAuth.JWTSecret = jwt
	c.OIDC.ClientSecret = oidcSecret
	c.Clients[0].ClientSecret = clientSecret

	check := func(what, s string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s leaks a secret: %s", what, s)
			}
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{c, &c, c.BasicAuth, c.OIDC, c.Clients[0], c.Clients, []any{c}} {
			check(verb, fmt.Sprintf(verb, v))
		}
	}
	s := fmt.Sprintf("%v", c)
	for _, want := range []string{"JWTSecret: (set)", "ClientSecret: (set)", "cli", "127.0.0.1:8080"} {
		if !strings.Contains(s, want) {
			t.Errorf("%%v output %q lacks %q", s, want)
		}
	}
	if s := fmt.Sprint(Default()); !strings.Contains(s, "JWTSecret: (unset)") {
		t.Errorf("default String %q lacks (unset)", s)
	}

	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		logger := slog.New(newHandler(&buf))
		logger.Info("config", "cfg", c, "basic", c.BasicAuth, "oidc", c.OIDC, "client", c.Clients[0])
		out := buf.String()
		check(name+" log", out)
		for _, want := range []string{"jwtSecret", "(set)", "clientSecret", "127.0.0.1:9999/callback"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s log %q lacks %q", name, out, want)
			}
		}
	}

	// Errors about secrets never contain them.
	short := "SHORT-secret-xyz"
	bad := validConfig()
	bad.BasicAuth.JWTSecret = short
	err := bad.Validate()
	mustContain(t, err, "too short (16 bytes)")
	if strings.Contains(err.Error(), short) {
		t.Errorf("error leaks the secret: %v", err)
	}
	_, err = Load("", env(map[string]string{"BYOC_JWT_SECRET": short}))
	mustContain(t, err, "BYOC_JWT_SECRET", "too short")
	if strings.Contains(err.Error(), short) {
		t.Errorf("error leaks the secret: %v", err)
	}
	content := "config:\n  authentication:\n    basicAuth:\n      jwtSecret: [" + short + "]\n"
	_, err = Load(writeValues(t, content), nil)
	mustContain(t, err, "jwtSecret", "expected a string")
	if strings.Contains(err.Error(), short) {
		t.Errorf("error leaks the secret: %v", err)
	}
}

// oidcMode switches a configuration to OIDC mode with discoveryURL.
func oidcMode(discoveryURL string) func(*Config) {
	return func(c *Config) {
		c.BasicAuth.Enabled, c.OIDC.Enabled = false, true
		c.OIDC.DiscoveryURL, c.OIDC.ClientID, c.OIDC.ClientSecret = discoveryURL, "app", "secret"
	}
}

func TestValidOIDCConfigurations(t *testing.T) {
	for _, u := range []string{
		"https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration",
		"http://127.0.0.1:5556/dex/.well-known/openid-configuration",
		"http://localhost:8081/.well-known/openid-configuration",
	} {
		c := Default()
		oidcMode(u)(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	c := Default()
	oidcMode("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")(&c)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "allowedTenants (or OIDC_ALLOWED_TENANTS): required") {
		t.Errorf("multi-tenant without allowedTenants: %v", err)
	}
	c.OIDC.AllowedTenants = []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}
	if err := c.Validate(); err != nil {
		t.Errorf("multi-tenant with a tenant: %v", err)
	}
	c.OIDC.AllowedTenants = []string{"contoso.com"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "is not a tenant ID") {
		t.Errorf("a domain as tenant: %v", err)
	}
	c, err := Load("", env(map[string]string{"LATCHKEY_BASIC_AUTH_ENABLED": "false", "LATCHKEY_OIDC_ENABLED": "true",
		"OIDC_DISCOVERY_URL": "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
		"OIDC_CLIENT_ID":     "a", "OIDC_CLIENT_SECRET": "b", "OIDC_ALLOWED_TENANTS": " 72f988bf-86f1-41af-91ab-2d7cd011db47 , * "}))
	if err != nil || len(c.OIDC.AllowedTenants) != 2 || c.OIDC.AllowedTenants[1] != "*" {
		t.Errorf("OIDC_ALLOWED_TENANTS: %v %v", c.OIDC.AllowedTenants, err)
	}
	c = Default()
	oidcMode("http://idp.internal/.well-known/openid-configuration")(&c)
	c.OIDC.VerifySSL = false
	if err := c.Validate(); err != nil {
		t.Errorf("http with verifySsl: false: %v", err)
	}
}

func TestSignupPolicy(t *testing.T) {
	c, err := Load(writeValues(t, "latchkey:\n  signup: invite\n"), nil)
	if err != nil || c.Signup != "invite" {
		t.Fatalf("signup: invite: %v %v", c.Signup, err)
	}
	_, err = Load(writeValues(t, "latchkey:\n  signup: closed\n"), nil)
	mustContain(t, err, `latchkey.signup (or LATCHKEY_SIGNUP): "closed" is not a sign-up policy; use open`)
	c, err = Load("", env(map[string]string{"LATCHKEY_SIGNUP": "invite"}))
	if err != nil || c.Signup != "invite" {
		t.Errorf("LATCHKEY_SIGNUP: %v %v", c.Signup, err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(writeValues(t, "latchkey:\n  trustedProxies: [10.0.0.0/8, 192.0.2.10]\n"), nil)
	if err != nil || len(c.TrustedProxies) != 2 {
		t.Fatalf("trustedProxies: %v %v", c.TrustedProxies, err)
	}
	p, err := ParseProxies(c.TrustedProxies)
	if err != nil || len(p) != 2 || p[1].Bits() != 32 {
		t.Errorf("ParseProxies: %v %v", p, err)
	}
	_, err = Load(writeValues(t, "latchkey:\n  trustedProxies: [proxy.internal]\n"), nil)
	mustContain(t, err, `latchkey.trustedProxies (or LATCHKEY_TRUSTED_PROXIES): "proxy.internal" is neither a network (CIDR) nor an address`)
	c, err = Load("", env(map[string]string{"LATCHKEY_TRUSTED_PROXIES": "10.1.0.0/16, ::1"}))
	if err != nil || len(c.TrustedProxies) != 2 {
		t.Errorf("LATCHKEY_TRUSTED_PROXIES: %v %v", c.TrustedProxies, err)
	}
}
