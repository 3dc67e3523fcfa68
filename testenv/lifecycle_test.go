package testenv_test

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/testenv"
	"github.com/latchkey-dev/latchkey/users"
)

// TestDisabledUsersRefreshTokenIsRefused: disabling an account stops its
// refresh tokens and access tokens at once.
func TestDisabledUsersRefreshTokenIsRefused(t *testing.T) {
	h := newHarness(t)
	bob := h.env.SignUp("bob@example.com", "Bob", "bobs long password")
	f := newFlow(appID)
	f.Scope = "openid offline_access email"
	tr := h.signIn(bob, f, appBasic)
	h.expectAccepted("bob's access token", tr.AccessToken)
	id := memberID(t, h.env, "bob@example.com")
	if err := h.env.Server().Users().SetDisabled(t.Context(), id, true); err != nil {
		t.Fatal(err)
	}
	expectOAuthError(t, "refresh of a disabled user", h.refresh(tr.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
	h.expectRejected("access token of a disabled user", tr.AccessToken)
	// Enabling again does not bring the old tokens back.
	_ = h.env.Server().Users().SetDisabled(t.Context(), id, false)
	expectOAuthError(t, "refresh after re-enabling", h.refresh(tr.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
}

// TestPasswordChangeRevokesRefreshTokens: a password change ends every
// refresh token of the user issued before it.
func TestPasswordChangeRevokesRefreshTokens(t *testing.T) {
	h := newHarness(t)
	f := newFlow(appID)
	f.Scope = "openid offline_access"
	tr := h.signIn(h.browser, f, appBasic)
	settings := h.env.Get(h.browser, "/oidc/settings")
	h.env.Submit(h.browser, settings, url.Values{"action": {"password"}, "current": {adaPassword}, "new": {"a brand new password"}})
	expectOAuthError(t, "refresh after a password change", h.refresh(tr.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
	// The browser that changed it keeps working: a new code flow succeeds
	// without the password.
	f2 := newFlow(appID)
	f2.Scope = "openid offline_access"
	tr2 := h.signIn(h.browser, f2, appBasic)
	h.tokens(h.refresh(tr2.RefreshToken, appBasic))
}

// TestRoleAndOrganizationClaims: roles and org reach the ID token and
// userinfo under the roles scope, and a role change shows in the next token.
func TestRoleAndOrganizationClaims(t *testing.T) {
	h := newHarness(t)
	bob := h.env.SignUp("bob@example.com", "Bob", "bobs long password")
	f := newFlow(appID)
	f.Scope = "openid email roles offline_access"
	tr := h.signIn(bob, f, appBasic)
	_, claims := jwtParts(t, tr.IDToken)
	if !slices.Equal(strs(claims["roles"]), []string{"viewer"}) || str(claims, "org") != users.DefaultOrganizationName {
		t.Errorf("ID token roles/org = %v/%v", claims["roles"], claims["org"])
	}
	info := h.expectAccepted("userinfo", tr.AccessToken)
	if !slices.Equal(strs(info["roles"]), []string{"viewer"}) || str(info, "org") != users.DefaultOrganizationName {
		t.Errorf("userinfo roles/org = %v/%v", info["roles"], info["org"])
	}
	// Without the roles scope: roles (as Entra ID sends app roles), no org.
	f2 := newFlow(appID)
	_, c2 := jwtParts(t, h.signIn(bob, f2, appBasic).IDToken)
	if _, ok := c2["org"]; ok || len(strs(c2["roles"])) != 1 {
		t.Errorf("without scope roles: roles %v org %v", c2["roles"], c2["org"])
	}
	// Promote: the next token (a refresh) says admin.
	if _, err := h.env.Server().Users().SetRole(t.Context(), memberID(t, h.env, "bob@example.com"), users.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	refreshed := h.tokens(h.refresh(tr.RefreshToken, appBasic))
	if _, c := jwtParts(t, refreshed.IDToken); !slices.Equal(strs(c["roles"]), []string{"admin"}) {
		t.Errorf("after promotion the refreshed ID token says roles %v", c["roles"])
	}
}

// TestSignInFloodKeepsMemoryBounded sends 200 concurrent sign-ins at the
// real argon2id cost (19 MiB each), each for its own unknown account from
// its own address behind a trusted proxy, so no throttle stops them before
// the hash: without the hash limiter they would need about 4 GiB at once.
// Each must be answered (401, or 503 once the hash queue is full), the heap
// must stay far below 4 GiB, and discovery must keep answering meanwhile.
func TestSignInFloodKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes passwords at the production cost")
	}
	env := testenv.New(t, testenv.WithHash(users.DefaultHashParams),
		testenv.WithConfig(func(c *server.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }))
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	type attempt struct {
		c    *http.Client
		form url.Values
	}
	attempts := make([]attempt, 200)
	for n := range attempts {
		c := env.Client()
		// Production-cost hashes take a while on two cores (longer under
		// -race): this test is about memory, not latency.
		c.Timeout = 10 * time.Minute
		attempts[n] = attempt{c, signInForm(t, env, c, fmt.Sprintf("nobody-%d@example.com", n), "a wrong password")}
	}
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	var wg sync.WaitGroup
	var answered, hashed, busy atomic.Int32
	for n, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xff := http.Header{"X-Forwarded-For": {fmt.Sprintf("198.18.%d.%d", n/250, n%250+1)}}
			switch postLogin(a.c, env.URL, a.form, xff) {
			case http.StatusUnauthorized:
				hashed.Add(1)
			case http.StatusServiceUnavailable:
				busy.Add(1)
			}
			answered.Add(1)
		}()
	}
	// Discovery answers while the flood is being hashed.
	discoveries := 0
	for answered.Load() < 150 && discoveries < 50 {
		resp, err := http.Get(env.IssuerURL() + "/.well-known/openid-configuration")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("discovery during the flood: %v", err)
		}
		resp.Body.Close()
		discoveries++
	}
	wg.Wait()
	close(stop)
	<-sampled
	if hashed.Load()+busy.Load() != 200 {
		t.Errorf("%d hashed (401) and %d refused as busy (503) of 200; every sign-in must get one of the two", hashed.Load(), busy.Load())
	}
	// More sign-ins reached the hash than any throttle lets through, so
	// the memory bound below is the limiter's doing.
	if hashed.Load() <= 20 {
		t.Fatalf("only %d sign-ins were hashed: the test no longer exercises the hash limiter", hashed.Load())
	}
	const limit = 1 << 30 // far below the ~4 GiB an unbounded flood needs
	if p := peak.Load(); p > limit {
		t.Errorf("heap peaked at %d MiB during 200 concurrent sign-ins (limit %d MiB): the hash limiter is not bounding memory", p>>20, limit>>20)
	} else {
		t.Logf("heap peak %d MiB; %d sign-ins hashed, %d refused as busy; %d discovery requests answered meanwhile", p>>20, hashed.Load(), busy.Load(), discoveries)
	}
}
