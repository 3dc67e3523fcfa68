package testenv_test

import (
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestSignInFloodKeepsMemoryBounded sends 200 concurrent wrong-password
// sign-ins at the real argon2id cost (19 MiB each): without the hash
// limiter they would need about 4 GiB at once. The heap must stay far below
// that, and discovery must keep answering meanwhile.
func TestSignInFloodKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 200 passwords at the production cost")
	}
	env := testenv.New(t, testenv.WithHash(users.DefaultHashParams))
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	// Prepare 200 browsers with a sign-in form each.
	type attempt struct {
		c    *http.Client
		form url.Values
	}
	attempts := make([]attempt, 200)
	for n := range attempts {
		c := env.Client()
		// 200 hashes at the production cost take a while on two cores
		// (longer under -race): this test is about memory, not latency.
		c.Timeout = 10 * time.Minute
		page := env.Get(c, "/api/v1/auth/login")
		f, err := testenv.ParseForm(page.Body)
		if err != nil {
			t.Fatal(err)
		}
		f.Values.Set("email", "ada@example.com")
		f.Values.Set("password", "a wrong password")
		attempts[n] = attempt{c, f.Values}
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
	var answered atomic.Int32
	for _, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/oidc/login", strings.NewReader(a.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if resp, err := a.c.Do(req); err == nil {
				resp.Body.Close()
				answered.Add(1)
			}
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
	const limit = 1 << 30 // far below the ~4 GiB an unbounded flood needs
	if p := peak.Load(); p > limit {
		t.Errorf("heap peaked at %d MiB during 200 concurrent sign-ins (limit %d MiB): the hash limiter is not bounding memory", p>>20, limit>>20)
	} else {
		t.Logf("heap peak %d MiB during 200 concurrent sign-ins; %d discovery requests answered meanwhile", p>>20, discoveries)
	}
	if answered.Load() != 200 {
		t.Errorf("%d of 200 sign-ins answered", answered.Load())
	}
}
