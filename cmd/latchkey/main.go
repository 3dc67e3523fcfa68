// Command latchkey runs a small OpenID Provider for staging (basic auth:
// email and password over a bbolt file) together with the backend's relying
// party, so the backend only ever speaks OpenID Connect.
//
// Usage:
//
//	latchkey serve [--config values.yaml]
//	latchkey check [--config values.yaml]
//	latchkey version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `latchkey — a built-in OpenID Provider and relying party for staging.

Usage:
  latchkey serve [--config FILE]   run the issuer (/oidc) and the backend (/api/v1/auth)
  latchkey check [--config FILE]   report whether sign-in can work with this configuration
  latchkey users SUBCOMMAND ...    manage accounts: add, list, set-role, disable, enable, remove, reset-link
  latchkey invite SUBCOMMAND ...   manage invitations: create, list, revoke
  latchkey version                 print the version

Run "latchkey serve --help" for the flags of serve, "latchkey users help" for
the administration commands (they work while the server is stopped).
`

func run(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, getenv)
	case "check":
		return check(args[1:], stdout, stderr, getenv)
	case "users", "invite":
		return admin(args, os.Stdin, stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "latchkey", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "latchkey: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// loadConfig parses the --config flag of a subcommand and loads the
// configuration; code is the exit status when ok is false.
func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) (string, bool)) (cfg server.Config, code int, ok bool) {
	fs := flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "values.yaml-shaped configuration file (default: embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return cfg, 2, false
	}
	cfg, err := server.Load(*configPath, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey: %v\n", err)
		return cfg, 1, false
	}
	return cfg, 0, true
}

func serve(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	cfg, code, ok := loadConfig("serve", args, stderr, getenv)
	if !ok {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// zitadel/oidc logs through the default logger: send it to the same place.
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "latchkey: %v\n", err)
		return 1
	}
	defer srv.Close()
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey: listen on %s (latchkey.listen): %v\n", cfg.Listen, err)
		return 1
	}
	fmt.Fprintf(stdout, "latchkey %s is running\n", version)
	fmt.Fprintf(stdout, "  open:      %s/\n", cfg.PublicURL)
	fmt.Fprintf(stdout, "  listening: %s\n", l.Addr())
	fmt.Fprintf(stdout, "  data:      %s\n", srv.DBPath())
	if srv.BuiltIn() {
		fmt.Fprintf(stdout, "  issuer:    %s (discovery: %s/.well-known/openid-configuration)\n", srv.IssuerURL(), srv.IssuerURL())
		setup, err := srv.Users().NeedsSetup(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "latchkey: %v\n", err)
			return 1
		}
		if setup {
			fmt.Fprintf(stdout, "  accounts:  none yet — open %s/ and click Create Account; the first account becomes the administrator\n", cfg.PublicURL)
		} else {
			n, _ := srv.Users().Count(ctx)
			fmt.Fprintf(stdout, "  accounts:  %d\n", n)
		}
	} else {
		state := "discovered"
		if srv.IssuerURL() == "" {
			state = "not reachable yet; retrying in the background (sign-in answers 503 until then)"
		}
		fmt.Fprintf(stdout, "  provider:  %s (%s)\n", cfg.OIDC.DiscoveryURL, state)
		fmt.Fprintf(stdout, "  redirect:  %s/api/v1/auth/callback (register this redirect URI with the provider)\n", cfg.PublicURL)
	}
	if err := srv.Serve(ctx, l); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "latchkey: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "latchkey stopped")
	return 0
}
