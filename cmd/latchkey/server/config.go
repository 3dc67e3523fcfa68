package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/latchkey-dev/latchkey/rp"
	"github.com/latchkey-dev/latchkey/users"
)

// Config is latchkey's whole configuration.
//
// It is normally built by Load from a Helm values.yaml-shaped file plus
// environment variables. Secrets (basicAuth.jwtSecret, oidc.clientSecret and
// client secrets) never appear in its String, Format or LogValue output.
type Config struct {
	BasicAuth BasicAuth
	OIDC      OIDC
	Listen    string // default "127.0.0.1:8080"
	PublicURL string // default "http://localhost:8080"; stored without trailing slash
	DataDir   string // default "./latchkey-data"
	Signup    string // "open" (default: anyone in validEmailDomain may create an account) or "invite"
	// TrustedProxies are CIDRs (or addresses) of reverse proxies in front
	// of latchkey whose X-Forwarded-For names the real client.
	TrustedProxies []string
	Clients        []Client
}

// BasicAuth configures the built-in email/password OpenID Provider
// (YAML: config.authentication.basicAuth).
type BasicAuth struct {
	Enabled          bool   // enabled
	ValidEmailDomain string // validEmailDomain: if set, only emails in this domain may register/log in
	JWTSecret        string // jwtSecret: HS256 key, at least 32 bytes (secret)
	Secret           string // secret: name of an existing Kubernetes Secret (used by the Helm chart)
}

// OIDC configures an external OpenID Provider such as Microsoft Entra ID
// (YAML: config.authentication.oidc).
type OIDC struct {
	Enabled      bool   // enabled
	DiscoveryURL string // discoveryUrl
	ClientID     string // clientId
	ClientSecret string // clientSecret (secret)
	Secret       string // secret: name of an existing Kubernetes Secret (used by the Helm chart)
	VerifySSL    bool   // verifySsl, default true
	CAFile       string // caFile: PEM bundle of extra CAs to trust for the provider (the safe alternative to verifySsl: false)
	// AllowedTenants: with a multi-tenant Entra ID discovery URL (common,
	// organizations), the tenant IDs whose users may sign in; "*" admits
	// every tenant.
	AllowedTenants []string
}

// Client is an OAuth 2.0 / OpenID Connect client registered with latchkey's
// provider (YAML: latchkey.clients[i]).
type Client struct {
	ClientID               string   // clientId
	ClientSecret           string   // clientSecret; empty means a public client (PKCE required) (secret)
	RedirectURIs           []string // redirectUris
	PostLogoutRedirectURIs []string // postLogoutRedirectUris
}

// BackendClientID is the client ID reserved for latchkey's built-in backend
// client; configured clients may not use it.
const BackendClientID = "latchkey"

// MinJWTSecretLen is the minimum length in bytes of basicAuth.jwtSecret.
const MinJWTSecretLen = 32

// EnvVar maps an environment variable to the configuration key it sets.
type EnvVar struct {
	Name string // environment variable, e.g. "BYOC_JWT_SECRET"
	Key  string // configuration key path, e.g. "config.authentication.basicAuth.jwtSecret"
	set  func(c *Config, val string) error
}

// str, list and boolean make the setter of an EnvVar.
func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func list(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = splitList(v); return nil }
}

func boolean(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		if err == nil {
			*f(c) = b
		}
		return err
	}
}

// EnvVars lists the environment variables Load reads. A variable that is set
// (even to the empty string) overrides the file: environment wins. Boolean
// variables accept true/false/1/0/yes/no, case-insensitively.
//
// It is a read-only table; do not modify it.
var EnvVars = []EnvVar{
	{"BYOC_JWT_SECRET", keyJWTSecret, str(func(c *Config) *string { return &c.BasicAuth.JWTSecret })},
	{"BYOC_VALID_EMAIL_DOMAIN", keyEmailDomain, str(func(c *Config) *string { return &c.BasicAuth.ValidEmailDomain })},
	{"OIDC_DISCOVERY_URL", keyOIDCDiscoveryURL, str(func(c *Config) *string { return &c.OIDC.DiscoveryURL })},
	{"OIDC_CLIENT_ID", keyOIDCClientID, str(func(c *Config) *string { return &c.OIDC.ClientID })},
	{"OIDC_CLIENT_SECRET", keyOIDCClientSecret, str(func(c *Config) *string { return &c.OIDC.ClientSecret })},
	{"OIDC_VERIFY_SSL", keyOIDCVerifySSL, boolean(func(c *Config) *bool { return &c.OIDC.VerifySSL })},
	{"OIDC_CA_FILE", keyOIDCCAFile, str(func(c *Config) *string { return &c.OIDC.CAFile })},
	{"OIDC_ALLOWED_TENANTS", keyOIDCTenants, list(func(c *Config) *[]string { return &c.OIDC.AllowedTenants })},
	{"LATCHKEY_LISTEN", keyListen, str(func(c *Config) *string { return &c.Listen })},
	{"LATCHKEY_PUBLIC_URL", keyPublicURL, str(func(c *Config) *string { return &c.PublicURL })},
	{"LATCHKEY_DATA_DIR", keyDataDir, str(func(c *Config) *string { return &c.DataDir })},
	{"LATCHKEY_SIGNUP", keySignup, str(func(c *Config) *string { return &c.Signup })},
	{"LATCHKEY_TRUSTED_PROXIES", keyTrustedProxies, list(func(c *Config) *[]string { return &c.TrustedProxies })},
	{"LATCHKEY_BASIC_AUTH_ENABLED", keyBasicEnabled, boolean(func(c *Config) *bool { return &c.BasicAuth.Enabled })},
	{"LATCHKEY_OIDC_ENABLED", keyOIDCEnabled, boolean(func(c *Config) *bool { return &c.OIDC.Enabled })},
}

// Key paths used in messages.
const (
	keyAuth             = "config.authentication"
	keyBasicAuth        = keyAuth + ".basicAuth"
	keyBasicEnabled     = keyBasicAuth + ".enabled"
	keyEmailDomain      = keyBasicAuth + ".validEmailDomain"
	keyJWTSecret        = keyBasicAuth + ".jwtSecret"
	keyOIDC             = keyAuth + ".oidc"
	keyOIDCEnabled      = keyOIDC + ".enabled"
	keyOIDCDiscoveryURL = keyOIDC + ".discoveryUrl"
	keyOIDCClientID     = keyOIDC + ".clientId"
	keyOIDCClientSecret = keyOIDC + ".clientSecret"
	keyOIDCVerifySSL    = keyOIDC + ".verifySsl"
	keyOIDCCAFile       = keyOIDC + ".caFile"
	keyOIDCTenants      = keyOIDC + ".allowedTenants"
	keyLatchkey         = "latchkey"
	keyListen           = keyLatchkey + ".listen"
	keyPublicURL        = keyLatchkey + ".publicUrl"
	keyDataDir          = keyLatchkey + ".dataDir"
	keySignup           = keyLatchkey + ".signup"
	keyTrustedProxies   = keyLatchkey + ".trustedProxies"
	keyClients          = keyLatchkey + ".clients"
)

// Default returns the defaults: basic auth enabled, OIDC disabled with
// VerifySSL true, listening on 127.0.0.1:8080, public URL
// http://localhost:8080, data in ./latchkey-data, no clients.
func Default() Config {
	return Config{
		BasicAuth: BasicAuth{Enabled: true},
		OIDC:      OIDC{VerifySSL: true},
		Listen:    "127.0.0.1:8080",
		PublicURL: "http://localhost:8080",
		DataDir:   "./latchkey-data",
		Signup:    "open",
	}
}

// Load reads the values.yaml-shaped file at path (path "" = no file: defaults only), then applies environment variables through getenv (pass os.LookupEnv in production), then validates.
//
// Only the top-level keys config.authentication and latchkey are read; other
// keys of a Helm values file are ignored. Inside those two sections unknown
// or duplicate keys and values of the wrong type are errors that name the
// key path and line. A key with a null/empty value keeps its default.
//
// Environment variables (see EnvVars) take precedence over the file. A nil
// getenv reads no environment.
//
// After validation, basicAuth.validEmailDomain is lower-cased with any
// leading "@" removed, and a trailing "/" is removed from publicUrl.
// On error Load returns the zero Config.
func Load(path string, getenv func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := parseYAML(data, path, &c); err != nil {
			return Config{}, err
		}
	}
	if getenv != nil {
		if err := applyEnv(&c, getenv); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	c.normalize()
	return c, nil
}

// normalize puts already validated values into canonical form.
func (c *Config) normalize() {
	c.BasicAuth.ValidEmailDomain = normalizeDomain(c.BasicAuth.ValidEmailDomain)
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
}

func normalizeDomain(d string) string {
	return strings.ToLower(strings.TrimPrefix(d, "@"))
}

// ---------------------------------------------------------------------------
// YAML

// parser walks the yaml.Node tree and collects every problem it finds.
type parser struct {
	errs []error
}

func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("config: "+format, args...))
}

// field is one known key of a strictly checked mapping.
type field struct {
	name string
	set  func(p *parser, path string, v *yaml.Node)
}

func parseYAML(data []byte, path string, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("config: parse %s: %w", path, err)
		}
		return fmt.Errorf("config: parse %s: more than one YAML document (line %d); use a single document", path, extra.Line)
	}

	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: parse %s: the top level must be a mapping (line %d), got %s", path, root.Line, describe(root))
	}

	p := &parser{}
	p.lenient(root, "", map[string]func(*parser, string, *yaml.Node){
		"config": func(p *parser, path string, v *yaml.Node) {
			if isNull(v) {
				return
			}
			if v.Kind != yaml.MappingNode {
				p.errorf("%q (line %d): expected a mapping, got %s", path, v.Line, describe(v))
				return
			}
			p.lenient(v, path, map[string]func(*parser, string, *yaml.Node){
				"authentication": func(p *parser, path string, v *yaml.Node) { p.authentication(path, v, c) },
			})
		},
		"latchkey": func(p *parser, path string, v *yaml.Node) { p.latchkey(path, v, c) },
	})
	return errors.Join(p.errs...)
}

// lenient visits the listed keys of mapping m, ignoring any other key. Each
// listed key may appear only once.
func (p *parser) lenient(m *yaml.Node, path string, known map[string]func(*parser, string, *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		set, ok := known[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			continue
		}
		full := join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			p.errorf("duplicate key %q (line %d); first defined on line %d", full, k.Line, line)
			continue
		}
		seen[k.Value] = k.Line
		set(p, full, v)
	}
}

// strict visits mapping v at path, rejecting unknown and duplicate keys.
// A null v is an empty mapping.
func (p *parser) strict(path string, v *yaml.Node, fields []field) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf("%q (line %d): expected a mapping, got %s", path, v.Line, describe(v))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		var f *field
		if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
			for j := range fields {
				if fields[j].name == k.Value {
					f = &fields[j]
					break
				}
			}
		}
		if f == nil {
			name := k.Value
			if k.Kind != yaml.ScalarNode {
				name = "<" + describe(k) + ">"
			}
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			p.errorf("unknown key %q (line %d); known keys: %s", join(path, name), k.Line, strings.Join(names, ", "))
			continue
		}
		full := join(path, f.name)
		if line, dup := seen[f.name]; dup {
			p.errorf("duplicate key %q (line %d); first defined on line %d", full, k.Line, line)
			continue
		}
		seen[f.name] = k.Line
		f.set(p, full, val)
	}
}

func (p *parser) authentication(path string, v *yaml.Node, c *Config) {
	p.strict(path, v, []field{
		{"basicAuth", func(p *parser, path string, v *yaml.Node) {
			b := &c.BasicAuth
			p.strict(path, v, []field{
				{"enabled", boolField(&b.Enabled)},
				{"validEmailDomain", stringField(&b.ValidEmailDomain)},
				{"jwtSecret", stringField(&b.JWTSecret)},
				{"secret", stringField(&b.Secret)},
			})
		}},
		{"oidc", func(p *parser, path string, v *yaml.Node) {
			o := &c.OIDC
			p.strict(path, v, []field{
				{"enabled", boolField(&o.Enabled)},
				{"discoveryUrl", stringField(&o.DiscoveryURL)},
				{"clientId", stringField(&o.ClientID)},
				{"clientSecret", stringField(&o.ClientSecret)},
				{"secret", stringField(&o.Secret)},
				{"verifySsl", boolField(&o.VerifySSL)},
				{"caFile", stringField(&o.CAFile)},
				{"allowedTenants", stringsField(&o.AllowedTenants)},
			})
		}},
	})
}

func (p *parser) latchkey(path string, v *yaml.Node, c *Config) {
	p.strict(path, v, []field{
		{"listen", stringField(&c.Listen)},
		{"publicUrl", stringField(&c.PublicURL)},
		{"dataDir", stringField(&c.DataDir)},
		{"signup", stringField(&c.Signup)},
		{"trustedProxies", stringsField(&c.TrustedProxies)},
		{"clients", func(p *parser, path string, v *yaml.Node) {
			if isNull(v) {
				return
			}
			if v.Kind != yaml.SequenceNode {
				p.errorf("%q (line %d): expected a list of clients, got %s", path, v.Line, describe(v))
				return
			}
			clients := make([]Client, len(v.Content))
			for i, item := range v.Content {
				cl := &clients[i]
				item = resolve(item)
				itemPath := fmt.Sprintf("%s[%d]", path, i)
				if isNull(item) || item.Kind != yaml.MappingNode {
					p.errorf("%q (line %d): expected a mapping with clientId and redirectUris, got %s", itemPath, item.Line, describe(item))
					continue
				}
				p.strict(itemPath, item, []field{
					{"clientId", stringField(&cl.ClientID)},
					{"clientSecret", stringField(&cl.ClientSecret)},
					{"redirectUris", stringsField(&cl.RedirectURIs)},
					{"postLogoutRedirectUris", stringsField(&cl.PostLogoutRedirectURIs)},
				})
			}
			c.Clients = clients
		}},
	})
}

// boolField sets *dst from a YAML boolean (true/false); null keeps *dst.
func boolField(dst *bool) func(*parser, string, *yaml.Node) {
	return func(p *parser, path string, v *yaml.Node) {
		if isNull(v) {
			return
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
			p.errorf("%q (line %d): expected a boolean (true or false), got %s", path, v.Line, describe(v))
			return
		}
		if err := v.Decode(dst); err != nil {
			p.errorf("%q (line %d): expected a boolean (true or false)", path, v.Line)
		}
	}
}

// stringField sets *dst from a YAML scalar string; null keeps *dst. Numbers
// are taken literally as written (e.g. 0123 stays "0123"); booleans,
// mappings and lists are errors. Values are never echoed in errors, since
// some of these fields are secrets.
func stringField(dst *string) func(*parser, string, *yaml.Node) {
	return func(p *parser, path string, v *yaml.Node) {
		if isNull(v) {
			return
		}
		s, ok := scalarString(v)
		if !ok {
			p.errorf("%q (line %d): expected a string, got %s", path, v.Line, describe(v))
			return
		}
		*dst = s
	}
}

// stringsField sets *dst from a YAML list of strings; null keeps *dst.
func stringsField(dst *[]string) func(*parser, string, *yaml.Node) {
	return func(p *parser, path string, v *yaml.Node) {
		if isNull(v) {
			return
		}
		if v.Kind != yaml.SequenceNode {
			p.errorf("%q (line %d): expected a list of strings, got %s", path, v.Line, describe(v))
			return
		}
		out := make([]string, 0, len(v.Content))
		for i, item := range v.Content {
			item = resolve(item)
			s, ok := scalarString(item)
			if !ok {
				p.errorf("%q (line %d): expected a string, got %s", fmt.Sprintf("%s[%d]", path, i), item.Line, describe(item))
				continue
			}
			out = append(out, s)
		}
		*dst = out
	}
}

func scalarString(v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		return "", false
	}
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float":
		return v.Value, true
	}
	return "", false
}

// resolve follows an alias to the node it refers to.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names the YAML type of n for error messages, without its value.
func describe(n *yaml.Node) string {
	switch {
	case n == nil || n.Kind == 0:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	}
	switch t := n.ShortTag(); t {
	case "!!str":
		return "a string"
	case "!!bool":
		return "a boolean"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!null":
		return "null"
	default:
		return "a value tagged " + t
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ---------------------------------------------------------------------------
// Environment

// applyEnv applies the variables of EnvVars that getenv reports as set.
func applyEnv(c *Config, getenv func(string) (string, bool)) error {
	var errs []error
	for _, ev := range EnvVars {
		if val, ok := getenv(ev.Name); ok {
			if err := ev.set(c, val); err != nil {
				errs = append(errs, fmt.Errorf("config: environment variable %s (%s): %w", ev.Name, ev.Key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// parseBool accepts true/false/1/0/yes/no, case-insensitively.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q; accepted values: true, false, 1, 0, yes, no (case-insensitive)", s)
}

// envFor returns the environment variable that sets key, or "".
func envFor(key string) string {
	for _, ev := range EnvVars {
		if ev.Key == key {
			return ev.Name
		}
	}
	return ""
}

// label names key in messages, with its environment variable if it has one.
func label(key string) string {
	if env := envFor(key); env != "" {
		return key + " (or " + env + ")"
	}
	return key
}

// ---------------------------------------------------------------------------
// Validation

// Validate checks c and returns every problem found, joined with
// errors.Join; each names the key and how to fix it. Messages never contain
// secret values.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{label(key)}, args...)...))
	}

	switch {
	case c.BasicAuth.Enabled && c.OIDC.Enabled:
		errs = append(errs, errors.New(keyAuth+": basicAuth.enabled and oidc.enabled are both true; enable exactly one"))
	case !c.BasicAuth.Enabled && !c.OIDC.Enabled:
		errs = append(errs, errors.New(keyAuth+": basicAuth.enabled and oidc.enabled are both false; enable exactly one (basicAuth.enabled: true for email/password login)"))
	}

	if c.OIDC.Enabled {
		errs = append(errs, c.OIDC.validate()...)
	}

	if d := c.BasicAuth.ValidEmailDomain; d != "" {
		if err := users.CheckDomain(normalizeDomain(d)); err != nil {
			add(keyEmailDomain, "%q %v; use a bare domain such as example.com", d, err)
		}
	}
	if n := len(c.BasicAuth.JWTSecret); n > 0 && n < MinJWTSecretLen {
		add(keyJWTSecret, "too short (%d bytes); use at least %d random bytes, e.g. openssl rand -base64 48", n, MinJWTSecretLen)
	}

	if err := checkPublicURL(c.PublicURL); err != nil {
		add(keyPublicURL, "%v", err)
	}
	if err := checkListen(c.Listen); err != nil {
		add(keyListen, "%v", err)
	}
	if c.DataDir == "" {
		add(keyDataDir, "must not be empty; set it to a writable directory, e.g. ./latchkey-data")
	}
	if _, err := ParseProxies(c.TrustedProxies); err != nil {
		add(keyTrustedProxies, "%v; list the proxies' networks, e.g. 10.0.0.0/8 or 192.0.2.10", err)
	}
	if _, err := users.ParseSignupPolicy(c.Signup); err != nil {
		add(keySignup, "%q is not a sign-up policy; use open (anyone in validEmailDomain may create an account) or invite (only with an invitation)", c.Signup)
	}

	seen := map[string]int{}
	for i, cl := range c.Clients {
		path := fmt.Sprintf("%s[%d]", keyClients, i)
		switch {
		case cl.ClientID == "":
			add(path+".clientId", "must not be empty; give every client a unique clientId")
		case strings.EqualFold(cl.ClientID, BackendClientID):
			add(path+".clientId", "%q is reserved for latchkey's built-in backend client; choose another clientId", cl.ClientID)
		default:
			if j, dup := seen[cl.ClientID]; dup {
				add(path+".clientId", "%q is already used by %s[%d]; clientIds must be unique", cl.ClientID, keyClients, j)
			} else {
				seen[cl.ClientID] = i
			}
		}
		if len(cl.RedirectURIs) == 0 {
			add(path+".redirectUris", "at least one redirect URI is required, e.g. http://127.0.0.1:9999/callback")
		}
		for j, u := range cl.RedirectURIs {
			if err := checkAbsURL(u, true); err != nil {
				add(fmt.Sprintf("%s.redirectUris[%d]", path, j), "%v", err)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if err := checkAbsURL(u, false); err != nil {
				add(fmt.Sprintf("%s.postLogoutRedirectUris[%d]", path, j), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// validate checks the settings of OIDC mode.
func (o OIDC) validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{label(key)}, args...)...))
	}
	switch u, err := url.Parse(o.DiscoveryURL); {
	case o.DiscoveryURL == "":
		add(keyOIDCDiscoveryURL, "required in OIDC mode, e.g. https://login.microsoftonline.com/<TENANT>/v2.0/.well-known/openid-configuration")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		add(keyOIDCDiscoveryURL, "%q is not an absolute http(s) URL; use the provider's discovery URL, e.g. https://login.microsoftonline.com/<TENANT>/v2.0/.well-known/openid-configuration", o.DiscoveryURL)
	case !strings.HasSuffix(u.Path, "/.well-known/openid-configuration") || u.RawQuery != "" || u.Fragment != "":
		msg := "must end in .well-known/openid-configuration"
		if s := rp.SuggestDiscoveryURL(o.DiscoveryURL); s != "" {
			msg += fmt.Sprintf("; you most likely meant %s", s)
		}
		add(keyOIDCDiscoveryURL, "%s (got %q)", msg, o.DiscoveryURL)
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && o.VerifySSL:
		add(keyOIDCDiscoveryURL, "%q uses http; the provider must be reached over https (http is allowed only for loopback addresses or with verifySsl: false in test setups)", o.DiscoveryURL)
	}
	if o.ClientID == "" {
		add(keyOIDCClientID, "required in OIDC mode: the application (client) ID of the app registration")
	}
	if o.ClientSecret == "" {
		add(keyOIDCClientSecret, "required in OIDC mode: a client secret of the app registration (Certificates & secrets)")
	}
	if u, err := url.Parse(o.DiscoveryURL); err == nil {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if (tenant == "common" || tenant == "organizations") && len(o.AllowedTenants) == 0 {
			add(keyOIDCTenants, "required with the multi-tenant discovery URL (%s): without it any Entra ID tenant's users could sign in, and any tenant's admin can set a user's email and app roles; list your tenant IDs, or \"*\" to admit every tenant deliberately", tenant)
		}
	}
	for _, t := range o.AllowedTenants {
		if t != "*" && !rp.IsTenantID(t) {
			add(keyOIDCTenants, "%q is not a tenant ID (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47) or \"*\"", t)
		}
	}
	if o.CAFile != "" {
		if _, err := os.Stat(o.CAFile); err != nil {
			add(keyOIDCCAFile, "cannot read %q: %v; give the path of a PEM file with the CA certificates to trust", o.CAFile, errors.Unwrap(err))
		}
	}
	return errs
}

// splitList splits a comma-separated environment value.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ParseProxies parses latchkey.trustedProxies: CIDRs or single addresses.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range list {
		if pre, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (CIDR) nor an address", p)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// urlErr returns the cause of a url.Parse error without the URL itself.
func urlErr(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func checkPublicURL(s string) error {
	const example = "e.g. https://login.example.com"
	if s == "" {
		return fmt.Errorf("must not be empty; set the URL clients reach latchkey at, %s", example)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a valid URL (%v); use an absolute http(s) URL, %s", urlErr(err), example)
	}
	switch {
	case (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "":
		return fmt.Errorf("must be an absolute http:// or https:// URL with a host, %s", example)
	case u.User != nil:
		return fmt.Errorf("must not contain a user name or password, %s", example)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not have a query (?) or fragment (#), %s", example)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("must not have a path (got %q): latchkey must be served at the root of its host; use scheme://host[:port] only, %s", u.Path, example)
	case u.Hostname() == "":
		return fmt.Errorf("must have a host name, %s", example)
	}
	return nil
}

func checkListen(s string) error {
	const fix = "use host:port, e.g. 127.0.0.1:8080 or :8080"
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port; %s", s, fix)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("%q has an invalid host; %s", s, fix)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535; %s", s, fix)
	}
	return nil
}

// checkAbsURL checks that s is an absolute URL; redirect URIs also may not
// have a fragment (RFC 6749 section 3.1.2). Redirect URIs are not secrets, so
// they are quoted in messages.
func checkAbsURL(s string, redirect bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a valid URL (%v); use an absolute URL such as http://127.0.0.1:9999/callback", s, urlErr(err))
	}
	if !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL; use e.g. http://127.0.0.1:9999/callback", s)
	}
	if (u.Scheme == "http" || u.Scheme == "https") && (u.Opaque != "" || u.Host == "") {
		return fmt.Errorf("%q has no host; use e.g. http://127.0.0.1:9999/callback", s)
	}
	if redirect && (u.Fragment != "" || strings.Contains(s, "#")) {
		return fmt.Errorf("%q must not contain a fragment (#); remove it", s)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Redacted formatting

func setOrUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// String describes c with secrets shown only as "(set)" or "(unset)".
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Config{BasicAuth: %s, OIDC: %s, Listen: %q, PublicURL: %q, DataDir: %q, Signup: %q, Clients: [",
		c.BasicAuth.String(), c.OIDC.String(), c.Listen, c.PublicURL, c.DataDir, c.Signup)
	for i, cl := range c.Clients {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(cl.String())
	}
	b.WriteString("]}")
	return b.String()
}

// Format makes every fmt verb (including %#v and %d) print the redacted
// String form.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer with secrets redacted.
func (c Config) LogValue() slog.Value {
	clients := make([]slog.Attr, len(c.Clients))
	for i, cl := range c.Clients {
		clients[i] = slog.Attr{Key: strconv.Itoa(i), Value: cl.LogValue()}
	}
	return slog.GroupValue(
		slog.Attr{Key: "basicAuth", Value: c.BasicAuth.LogValue()},
		slog.Attr{Key: "oidc", Value: c.OIDC.LogValue()},
		slog.String("listen", c.Listen),
		slog.String("publicUrl", c.PublicURL),
		slog.String("dataDir", c.DataDir),
		slog.String("signup", c.Signup),
		slog.Any("trustedProxies", c.TrustedProxies),
		slog.Attr{Key: "clients", Value: slog.GroupValue(clients...)},
	)
}

// String describes b with JWTSecret shown only as "(set)" or "(unset)".
func (b BasicAuth) String() string {
	return fmt.Sprintf("BasicAuth{Enabled: %t, ValidEmailDomain: %q, JWTSecret: %s, Secret: %q}",
		b.Enabled, b.ValidEmailDomain, setOrUnset(b.JWTSecret), b.Secret)
}

// Format makes every fmt verb print the redacted String form.
func (b BasicAuth) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, b.String()) }

// LogValue implements slog.LogValuer with JWTSecret redacted.
func (b BasicAuth) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", b.Enabled),
		slog.String("validEmailDomain", b.ValidEmailDomain),
		slog.String("jwtSecret", setOrUnset(b.JWTSecret)),
		slog.String("secret", b.Secret),
	)
}

// String describes o with ClientSecret shown only as "(set)" or "(unset)".
func (o OIDC) String() string {
	return fmt.Sprintf("OIDC{Enabled: %t, DiscoveryURL: %q, ClientID: %q, ClientSecret: %s, Secret: %q, VerifySSL: %t}",
		o.Enabled, o.DiscoveryURL, o.ClientID, setOrUnset(o.ClientSecret), o.Secret, o.VerifySSL)
}

// Format makes every fmt verb print the redacted String form.
func (o OIDC) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }

// LogValue implements slog.LogValuer with ClientSecret redacted.
func (o OIDC) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", o.Enabled),
		slog.String("discoveryUrl", o.DiscoveryURL),
		slog.String("clientId", o.ClientID),
		slog.String("clientSecret", setOrUnset(o.ClientSecret)),
		slog.String("secret", o.Secret),
		slog.Bool("verifySsl", o.VerifySSL),
		slog.String("caFile", o.CAFile),
		slog.Any("allowedTenants", o.AllowedTenants),
	)
}

// String describes cl with ClientSecret shown only as "(set)" or "(unset)".
func (cl Client) String() string {
	return fmt.Sprintf("Client{ClientID: %q, ClientSecret: %s, RedirectURIs: %q, PostLogoutRedirectURIs: %q}",
		cl.ClientID, setOrUnset(cl.ClientSecret), cl.RedirectURIs, cl.PostLogoutRedirectURIs)
}

// Format makes every fmt verb print the redacted String form.
func (cl Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, cl.String()) }

// LogValue implements slog.LogValuer with ClientSecret redacted.
func (cl Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("clientId", cl.ClientID),
		slog.String("clientSecret", setOrUnset(cl.ClientSecret)),
		slog.Any("redirectUris", cl.RedirectURIs),
		slog.Any("postLogoutRedirectUris", cl.PostLogoutRedirectURIs),
	)
}
