package testenv_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/testenv"
)

func TestSignUpLoginMeLogout(t *testing.T) {
	env := testenv.New(t)
	admin := env.SignUp("Ada@Example.com", "Ada Lovelace", "correct horse battery")
	id, status := env.Me(admin)
	if status != http.StatusOK {
		t.Fatalf("me: status %d", status)
	}
	if id.Email != "ada@example.com" || id.Name != "Ada Lovelace" || id.Issuer != env.IssuerURL() || id.Subject == "" {
		t.Errorf("identity = %+v", id)
	}
	if !id.HasRole("admin") {
		t.Errorf("first account roles = %v, want admin", id.Roles)
	}
	home := env.Get(admin, "/")
	if !strings.Contains(home.Body, "Signed in as <strong>Ada Lovelace</strong>") || !strings.Contains(home.Body, "(admin)") {
		t.Errorf("start page does not show the signed-in user:\n%s", home.Body)
	}

	env.Logout(admin)
	if _, status := env.Me(admin); status != http.StatusUnauthorized {
		t.Errorf("me after logout: status %d, want 401", status)
	}
	// The issuer session ended too: a new login asks for the password.
	page := env.Get(admin, "/api/v1/auth/login")
	if !strings.Contains(page.Body, `name="password"`) {
		t.Fatalf("login after logout did not show the sign-in form: %s\n%s", page.URL, page.Body)
	}

	viewer := env.SignUp("bob@example.com", "Bob", "another long password")
	if id, _ := env.Me(viewer); !id.HasRole("viewer") || id.HasRole("admin") {
		t.Errorf("second account roles = %v, want viewer", id.Roles)
	}
	again := env.Login("ada@example.com", "correct horse battery")
	if id, _ := env.Me(again); !id.HasRole("admin") {
		t.Errorf("admin after login: %+v", id)
	}
}
