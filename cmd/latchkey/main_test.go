package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/testenv"
)

// TestMain lets the test binary act as the latchkey command when
// LATCHKEY_TEST_MAIN is set, so tests can run it as a real process (and
// kill it) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("LATCHKEY_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
	}
	os.Exit(m.Run())
}

// process is latchkey serve running as a child process.
type process struct {
	cmd    *exec.Cmd
	url    string
	lines  chan string
	stderr *strings.Builder
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `latchkey serve` in dir on addr and waits until it says
// it is running.
func startServe(t *testing.T, dir, addr string, extraEnv ...string) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LATCHKEY_TEST_MAIN=1", "LATCHKEY_LISTEN="+addr, "LATCHKEY_PUBLIC_URL=http://"+addr)
	cmd.Env = append(cmd.Env, extraEnv...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, url: "http://" + addr, lines: make(chan string, 100), stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("latchkey serve exited before it was ready; stderr:\n%s", p.stderr.String())
			}
			if strings.HasPrefix(strings.TrimSpace(line), "accounts:") {
				return p
			}
		case <-deadline:
			t.Fatalf("latchkey serve did not become ready; stderr:\n%s", p.stderr.String())
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestServeDefaultsAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startServe(t, dir, addr)
	resp, err := http.Get(p.url + "/oidc/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	info, err := os.Stat(filepath.Join(dir, "latchkey-data", "latchkey.db"))
	if err != nil {
		t.Fatalf("data file not in ./latchkey-data: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("data file mode %v, want 0600", info.Mode().Perm())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, p.stderr.String())
	}
	var rest []string
	for l := range p.lines {
		rest = append(rest, l)
	}
	if !strings.Contains(strings.Join(rest, "\n"), "latchkey stopped") {
		t.Errorf("no clean stop message; output %q", rest)
	}
}

func TestServeRefusesASecondProcess(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir, freeAddr(t))
	var out, errOut strings.Builder
	t.Chdir(dir)
	code := run([]string{"serve"}, &out, &errOut, func(k string) (string, bool) {
		if k == "LATCHKEY_LISTEN" {
			return freeAddr(t), true
		}
		return "", false
	})
	if code == 0 || !strings.Contains(errOut.String(), "in use by another latchkey process") {
		t.Errorf("second serve on the same data: exit %d, stderr %q", code, errOut.String())
	}
}

func TestConfigErrorsExitNonZero(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"serve"}, &out, &errOut, func(k string) (string, bool) {
		if k == "LATCHKEY_OIDC_ENABLED" {
			return "true", true
		}
		return "", false
	})
	if code != 1 || !strings.Contains(errOut.String(), "oidc.enabled") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut, nil); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// signUp creates an account through the standalone Create Account page and
// reports whether the server acknowledged it (303 to the start page).
func signUp(base, email string) (bool, error) {
	c := testClient()
	resp, err := c.Get(base + "/oidc/signup")
	if err != nil {
		return false, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f, err := testenv.ParseForm(string(body))
	if err != nil {
		return false, err
	}
	f.Values.Set("email", email)
	f.Values.Set("name", "User")
	f.Values.Set("password", "password of "+email)
	resp, err = c.PostForm(base+"/oidc/signup", f.Values)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther, nil
}

func testClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestKillDuringSignUpsLosesNothingAcknowledged kills the server with
// SIGKILL while sign-ups are in flight, restarts it, and checks that every
// account whose creation was acknowledged can sign in.
func TestKillDuringSignUpsLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startServe(t, dir, addr)
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil && n < 500; n++ {
				email := fmt.Sprintf("w%d-%d@example.com", w, n)
				ok, err := signUp(p.url, email)
				if err != nil {
					return // the server is gone
				}
				if ok {
					mu.Lock()
					acked = append(acked, email)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good number of sign-ups were acknowledged.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	cancel()
	wg.Wait()

	p2 := startServe(t, dir, addr)
	env := struct{ url string }{p2.url}
	for _, email := range acked {
		if !canLogin(t, env.url, email, "password of "+email) {
			t.Errorf("acknowledged account %s lost after SIGKILL", email)
		}
	}
	t.Logf("%d acknowledged sign-ups survived SIGKILL", len(acked))
}

// canLogin posts the issuer's sign-in form of a backend login.
func canLogin(t *testing.T, base, email, password string) bool {
	t.Helper()
	c := testClient()
	loc := base + "/api/v1/auth/login"
	var body string
	for range 5 { // follow the redirects to the sign-in page
		resp, err := c.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			body = string(raw)
			break
		}
		next, _ := url.Parse(resp.Header.Get("Location"))
		base, _ := url.Parse(loc)
		loc = base.ResolveReference(next).String()
	}
	f, err := testenv.ParseForm(body)
	if err != nil {
		t.Fatalf("sign-in page: %v", err)
	}
	f.Values.Set("email", email)
	f.Values.Set("password", password)
	resp, err := c.PostForm(base+"/oidc/login", f.Values)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther
}
