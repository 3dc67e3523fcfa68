package testenv_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/latchkey-dev/latchkey/testenv"
)

// The browser test drives the real pages in a headless Chromium. CI installs
// the browser with `apt-get install -y chromium` (Debian, Ubuntu); there the
// test fails, and never skips, when no browser is found.

const (
	browserTestTimeout = 3 * time.Minute  // the whole journey
	browserStepTimeout = 30 * time.Second // one step
	screenshotTimeout  = 10 * time.Second
)

// browserPath finds a Chromium-based browser, or skips (fails under CI) the
// test when there is none.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no browser found (chromium, chromium-browser or google-chrome on PATH); CI must install one: apt-get install -y chromium")
	}
	t.Skip("no browser found (chromium, chromium-browser or google-chrome on PATH); install the Debian/Ubuntu package chromium (apt-get install -y chromium) to run this test")
	return ""
}

// journey runs the steps of a browser test and keeps a full-page screenshot
// of the state after each step, numbered in order. On failure the test logs
// the directory and the failing step; on success the directory is removed,
// unless LATCHKEY_SCREENSHOT_DIR asked to keep the screenshots.
type journey struct {
	t    *testing.T
	dir  string
	n    int
	step string // the step that runs (or ran last)
}

func newJourney(t *testing.T) *journey {
	t.Helper()
	parent, keep := os.Getenv("LATCHKEY_SCREENSHOT_DIR"), true
	if parent == "" {
		parent, keep = os.TempDir(), false
	} else if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	dir, err := os.MkdirTemp(parent, "latchkey-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	j := &journey{t: t, dir: dir}
	t.Cleanup(func() {
		switch {
		case t.Failed() && j.n == 0:
			t.Logf("failed before the first step; no screenshots")
			_ = os.RemoveAll(dir)
		case t.Failed():
			t.Logf("failed in step %d %q; the screenshots of every step so far (the last one shows the failing state) are in %s", j.n, j.step, dir)
		case keep:
			t.Logf("screenshots kept in %s", dir)
		default:
			_ = os.RemoveAll(dir)
		}
	})
	return j
}

// do runs one step in the tab with a timeout, then saves a screenshot of
// the tab, also (first) when the step failed.
func (j *journey) do(tab context.Context, name string, step func(ctx context.Context) error) {
	j.t.Helper()
	j.n++
	j.step = name
	ctx, cancel := context.WithTimeout(tab, browserStepTimeout)
	// Look at this person's window, as a person would: a tab in the
	// background gets no new frames, so it cannot be captured.
	_, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{})
	if err == nil {
		err = step(ctx)
	}
	cancel()
	file, shotErr := j.screenshot(tab, name)
	if err != nil {
		if shotErr != nil {
			j.t.Fatalf("step %d %q: %v (no screenshot of the failing state: %v)", j.n, name, err, shotErr)
		}
		j.t.Fatalf("step %d %q: %v (screenshot of the failing state: %s)", j.n, name, err, file)
	}
	if shotErr != nil {
		j.t.Fatalf("step %d %q: screenshot: %v", j.n, name, shotErr)
	}
}

func (j *journey) screenshot(tab context.Context, name string) (string, error) {
	file := filepath.Join(j.dir, fmt.Sprintf("%02d-%s.png", j.n, name))
	ctx, cancel := context.WithTimeout(tab, screenshotTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return file, err
	}
	return file, os.WriteFile(file, png, 0o644)
}

// say makes a's error name what the action was doing: a query that times
// out says only "context deadline exceeded".
func say(what string, a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
		return v, err
	}
}

func navigate(url string) chromedp.Action[chromedp.Void] {
	return say("open "+url, chromedp.Navigate(url))
}

func click(sel string) chromedp.Action[chromedp.Void] {
	return say("click "+sel, chromedp.Click(sel))
}

func waitFor(sel string) chromedp.Action[chromedp.Void] {
	return say("wait for "+sel, chromedp.WaitVisible(sel))
}

// typeInto types text, key by key, into the field with this id.
func typeInto(id, text string) chromedp.Action[chromedp.Void] {
	return say("type into #"+id, chromedp.SendKeys(chromedp.ID(id), text))
}

// XPath selectors (a plain string is a DOM search, which takes XPath).
func link(text string) string   { return fmt.Sprintf(`//a[normalize-space()=%q]`, text) }
func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, text) }
func heading(text string) string {
	return fmt.Sprintf(`//h1[normalize-space()=%q]`, text)
}

const (
	signedInLine = `//main/p[starts-with(normalize-space(), "Signed in as")]`
	signedOut    = `//main/p[normalize-space()="You are not signed in."]`
	signInButton = `//a[contains(concat(" ", normalize-space(@class), " "), " button ")][normalize-space()="Sign in"]`
)

func notice(contains string) string {
	return fmt.Sprintf(`//p[@class="notice"][contains(normalize-space(), %q)]`, contains)
}

// expectSignedIn waits for the start page and checks whom it shows.
func expectSignedIn(name, email, role string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		text, err := chromedp.Text(signedInLine, chromedp.NodeVisible)(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("the start page does not show who is signed in: %w", err)
		}
		want := fmt.Sprintf("Signed in as %s (%s, %s).", name, email, role)
		if got := strings.Join(strings.Fields(text), " "); got != want {
			return chromedp.Void{}, fmt.Errorf("start page says %q, want %q", got, want)
		}
		return chromedp.Void{}, nil
	}
}

// expectFocus checks that the element with this id has the keyboard focus,
// waiting a little for autofocus.
func expectFocus(id string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.PollFunction[bool](`id => document.activeElement !== null && document.activeElement.id === id`,
			chromedp.WithPollingArgs(id), chromedp.WithPollingTimeout(5*time.Second))(ctx, t)
		if err != nil {
			focused, _ := chromedp.Evaluate[string](`document.activeElement ? document.activeElement.outerHTML : "nothing"`)(ctx, t)
			return chromedp.Void{}, fmt.Errorf("#%s does not have the keyboard focus (%v); the focus is on %s", id, err, focused)
		}
		return chromedp.Void{}, nil
	}
}

// expectValue checks the value of the field with this id.
func expectValue(id, want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		got, err := chromedp.Value(chromedp.ID(id))(ctx, t)
		if err == nil && got != want {
			err = fmt.Errorf("#%s holds %q, want %q", id, got, want)
		}
		return chromedp.Void{}, err
	}
}

// signOut clicks Sign out on the start page.
func signOut(ctx context.Context) error {
	return chromedp.Do(ctx,
		click(button("Sign out")),
		waitFor(signedOut),
	)
}

func TestBrowserAccountJourney(t *testing.T) {
	browser := browserPath(t)
	env := testenv.New(t)
	j := newJourney(t)

	const (
		adaPassword    = "correct horse battery"
		bobPassword    = "bobs long password"
		bobNewPassword = "bobs brand new password"
	)

	ctx, cancel := context.WithTimeout(t.Context(), browserTestTimeout)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	)
	defer cancelAlloc()

	// The admin's tab. Its first Run starts the browser, bound to the
	// whole test's context (a step's timeout would stop the browser).
	admin, cancelAdmin := chromedp.NewContext(allocCtx)
	defer cancelAdmin()
	if err := chromedp.Do(admin); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	// Bob's tab and the phone's tab: same browser, each in a browser
	// context of its own, so they share no cookies with anyone.
	bob, cancelBob := chromedp.NewContext(admin, chromedp.WithNewBrowserContext())
	defer cancelBob()
	phone, cancelPhone := chromedp.NewContext(admin, chromedp.WithNewBrowserContext())
	defer cancelPhone()
	for _, tab := range []context.Context{bob, phone} {
		if err := chromedp.Do(tab); err != nil { // opens the tab, with no step's timeout
			t.Fatalf("open a tab: %v", err)
		}
	}

	// 1. Ada creates the organization from the start page.
	j.do(admin, "admin-create-account", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			navigate(env.URL+"/"),
			click(link("Create Account")),
			waitFor(heading("Create Account")),
			typeInto("email", "ada@example.com"),
			typeInto("name", "Ada Lovelace"),
			typeInto("password", adaPassword),
			click(button("Create Account")),
			expectSignedIn("Ada Lovelace", "ada@example.com", "admin"),
		)
	})

	// 2. Ada invites Bob as a viewer and reads the link.
	var invitation string
	j.do(admin, "admin-invite", func(ctx context.Context) error {
		err := chromedp.Do(ctx,
			click(link("Organization")),
			waitFor(button("Create invitation")),
			typeInto("invite-email", "bob@example.com"),
			chromedp.SetValue(chromedp.ID("invite-role"), "viewer"),
			click(button("Create invitation")),
			waitFor(`//input[@id="link"]`),
		)
		if err != nil {
			return err
		}
		if invitation, err = chromedp.Run(ctx, chromedp.Value(chromedp.ID("link"))); err != nil {
			return err
		}
		if !strings.HasPrefix(invitation, env.IssuerURL()+"/invite?token=") {
			return fmt.Errorf("invitation link %q is not under %s/invite", invitation, env.IssuerURL())
		}
		label, err := chromedp.Run(ctx, chromedp.Text(`//label[@for="link"]`))
		if err != nil {
			return err
		}
		if want := "Invitation link for bob@example.com (viewer)"; label != want {
			return fmt.Errorf("link label %q, want %q", label, want)
		}
		return nil
	})

	// 3. Bob, in a browser of his own, joins through the link.
	j.do(bob, "bob-join", func(ctx context.Context) error {
		err := chromedp.Do(ctx,
			navigate(invitation),
			waitFor(button("Join")),
		)
		if err != nil {
			return err
		}
		intro, err := chromedp.Run(ctx, chromedp.Text(`//main/p[contains(., "You were invited as")]`))
		if err != nil {
			return err
		}
		if !strings.Contains(intro, "bob@example.com (viewer)") {
			return fmt.Errorf("invitation page says %q", intro)
		}
		return chromedp.Do(ctx,
			typeInto("name", "Bob"),
			typeInto("password", bobPassword),
			click(button("Join")),
			expectSignedIn("Bob", "bob@example.com", "viewer"),
		)
	})

	// 4. Bob signs out, and in again with the keyboard only: the email
	// field has the focus, Tab moves to the password, Enter submits.
	j.do(bob, "bob-sign-out", signOut)
	j.do(bob, "bob-sign-in-keyboard", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			click(signInButton),
			// The issuer's session ended with the sign-out: the form asks again.
			waitFor(heading("Sign in")),
			waitFor(`//input[@id="email"]`),
			expectFocus("email"), // autofocus
			say("type the email and Tab", chromedp.KeyEvent("bob@example.com"+kb.Tab)),
			expectFocus("password"),
			say("type the password and Enter", chromedp.KeyEvent(bobPassword+kb.Enter)),
			expectSignedIn("Bob", "bob@example.com", "viewer"),
		)
	})

	// 5. Bob changes his password in Settings.
	j.do(bob, "bob-change-password", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			click(link("Settings")),
			waitFor(button("Change password")),
			typeInto("current", bobPassword),
			typeInto("new", bobNewPassword),
			click(button("Change password")),
			waitFor(notice("Your password is changed")),
		)
	})

	// 6. Ada makes Bob an administrator on the Organization page.
	j.do(admin, "admin-promote-bob", func(ctx context.Context) error {
		u, err := env.Server().Users().ByEmail(ctx, "bob@example.com")
		if err != nil {
			return fmt.Errorf("bob's account: %w", err)
		}
		// Bob's row, found by his email; its select must be role-<his ID>.
		row := `//tr[td[1][normalize-space()="bob@example.com"]]`
		sel := fmt.Sprintf(`%s//select[@id="role-%s"]`, row, u.ID)
		return chromedp.Do(ctx,
			navigate(env.URL+"/"),
			click(link("Organization")),
			waitFor(sel),
			chromedp.SetValue(sel, "admin"),
			click(row+button("Set role")),
			waitFor(notice("bob@example.com is now admin")),
		)
	})

	// 7. Bob signs out; the old password no longer works, the new one
	// does, and the start page shows him as admin.
	j.do(bob, "bob-home-sign-out", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			click(link("Home")),
			waitFor(button("Sign out")),
			click(button("Sign out")),
			waitFor(signedOut),
		)
	})
	j.do(bob, "bob-old-password-refused", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			click(signInButton),
			waitFor(heading("Sign in")),
			typeInto("email", "bob@example.com"),
			typeInto("password", bobPassword),
			click(button("Sign in")),
			waitFor(`//p[@role="alert"][normalize-space()="Incorrect email or password."]`),
		)
	})
	j.do(bob, "bob-sign-in-admin", func(ctx context.Context) error {
		return chromedp.Do(ctx,
			expectValue("email", "bob@example.com"), // kept after the refusal
			expectFocus("password"),                 // where the person retypes
			typeInto("password", bobNewPassword),
			click(button("Sign in")),
			expectSignedIn("Bob", "bob@example.com", "admin"),
		)
	})

	// The sign-in page on a phone: nothing wider than the screen.
	j.do(phone, "phone-sign-in-page", func(ctx context.Context) error {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait),
			navigate(env.URL+"/"),
			click(signInButton),
			waitFor(heading("Sign in")),
			waitFor(button("Sign in")),
		)
		if err != nil {
			return err
		}
		width, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			return err
		}
		if width[0] > width[1] {
			return fmt.Errorf("the sign-in page is %dpx wide on a %dpx wide phone screen", width[0], width[1])
		}
		return nil
	})
}
