package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/users"
)

// adminUsage is the usage text of `latchkey users` and `latchkey invite`.
const adminUsage = `Usage:
  latchkey users add EMAIL --name NAME [--role viewer|admin] --password-stdin
  latchkey users list
  latchkey users set-role EMAIL|ID admin|viewer
  latchkey users disable EMAIL|ID
  latchkey users enable EMAIL|ID
  latchkey users remove EMAIL|ID
  latchkey users reset-link EMAIL|ID [--ttl 1h]
  latchkey invite create EMAIL [--role viewer|admin] [--ttl 168h]
  latchkey invite list
  latchkey invite revoke ID

Every command also accepts --config FILE (the file given to serve) and works
directly on the data directory, so latchkey serve must not be running on it;
while it runs, use the web pages at <publicUrl>/oidc/admin instead.
`

// adminLockTimeout is how long a command waits for the database lock before
// concluding that the server holds it.
const adminLockTimeout = 200 * time.Millisecond

// addInvitationTTL is the lifetime of the invitation `users add` creates and
// accepts at once.
const addInvitationTTL = 10 * time.Minute

// adminFlags holds the flags of every administration command; each command
// registers only those it accepts.
type adminFlags struct {
	config        string
	name          string
	role          string
	roleSet       bool // --role was given explicitly
	passwordStdin bool
	ttl           time.Duration
	password      string // read from stdin by `users add`; never printed or logged
}

// adminCommand describes one administration command.
type adminCommand struct {
	synopsis string        // arguments, for the usage line
	nargs    int           // positional arguments
	flags    []string      // names of the flags it accepts besides --config
	ttl      time.Duration // default of --ttl, if it accepts it
	creates  bool          // may create the database (otherwise it must exist)
	// prepare checks the arguments (and reads stdin) before the database
	// is opened, so that a mistake costs no lock and nothing waits for
	// input while the lock is held. It may be nil.
	prepare func(f *adminFlags, pos []string, stdin io.Reader) error
	run     func(a *adminEnv, f *adminFlags, pos []string) error
}

// adminCommands are the administration commands by "group subcommand".
var adminCommands = map[string]adminCommand{
	"users add": {
		synopsis: "EMAIL --name NAME [--role viewer|admin] --password-stdin",
		nargs:    1, flags: []string{"name", "role", "password-stdin"}, creates: true,
		prepare: prepareUsersAdd, run: usersAdd,
	},
	"users list": {run: usersList},
	"users set-role": {
		synopsis: "EMAIL|ID admin|viewer", nargs: 2,
		prepare: func(_ *adminFlags, pos []string, _ io.Reader) error { return checkRole(pos[1]) },
		run:     usersSetRole,
	},
	"users disable": {synopsis: "EMAIL|ID", nargs: 1, run: usersSetDisabled(true)},
	"users enable":  {synopsis: "EMAIL|ID", nargs: 1, run: usersSetDisabled(false)},
	"users remove":  {synopsis: "EMAIL|ID", nargs: 1, run: usersRemove},
	"users reset-link": {
		synopsis: "EMAIL|ID [--ttl 1h]", nargs: 1, flags: []string{"ttl"}, ttl: users.DefaultResetTTL,
		prepare: checkTTL, run: usersResetLink,
	},
	"invite create": {
		synopsis: "EMAIL [--role viewer|admin] [--ttl 168h]", nargs: 1, flags: []string{"role", "ttl"},
		ttl: users.DefaultInvitationTTL, prepare: prepareInviteCreate, run: inviteCreate,
	},
	"invite list":   {run: inviteList},
	"invite revoke": {synopsis: "ID", nargs: 1, run: inviteRevoke},
}

// usageError is a mistake on the command line: the command exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// cliError is a failure explained to the operator in msg; err is the cause,
// kept for errors.Is and errors.As.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// failf returns a cliError with the message format and cause err.
func failf(err error, format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...), err: err}
}

// adminEnv is what a command works with once the database is open.
type adminEnv struct {
	ctx    context.Context
	cfg    server.Config
	store  *users.Store
	stdout io.Writer
	audit  *slog.Logger
}

// auditf logs a change to the audit trail. attrs name what changed; they
// must never include a password or a token.
func (a *adminEnv) auditf(msg, event string, attrs ...any) {
	attrs = append([]any{"event", event}, attrs...)
	attrs = append(attrs, "via", "cli")
	a.audit.Info("audit: "+msg, attrs...)
}

// admin is `latchkey users …` and `latchkey invite …`; args[0] is "users"
// or "invite". stdin is read only by `users add --password-stdin`.
func admin(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if len(args) < 2 {
		fmt.Fprintf(stderr, "latchkey: %s needs a subcommand\n\n%s", args[0], adminUsage)
		return 2
	}
	switch args[1] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, adminUsage)
		return 0
	}
	key := args[0] + " " + args[1]
	cmd, ok := adminCommands[key]
	if !ok {
		fmt.Fprintf(stderr, "latchkey: unknown command %q\n\n%s", key, adminUsage)
		return 2
	}
	fs := flag.NewFlagSet("latchkey "+key, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey %s [--config FILE]\n", strings.TrimSpace(key+" "+cmd.synopsis))
		fs.PrintDefaults()
	}
	var f adminFlags
	f.register(fs, cmd)
	pos, err := parseInterspersed(fs, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "role" {
			f.roleSet = true
		}
	})
	if len(pos) != cmd.nargs {
		what := "too many arguments"
		if len(pos) < cmd.nargs {
			what = "missing arguments"
		}
		// The arguments are not quoted: one of them might be a password
		// typed in the wrong place.
		return reportAdmin(stderr, usagef("%s: %s", key, what), fs)
	}
	if cmd.prepare != nil {
		if err := cmd.prepare(&f, pos, stdin); err != nil {
			return reportAdmin(stderr, err, fs)
		}
	}
	return reportAdmin(stderr, withStore(cmd, &f, pos, stdout, stderr, getenv), fs)
}

// reportAdmin prints err as one line on stderr, with the usage of fs for a
// usage error, and returns the exit code.
func reportAdmin(stderr io.Writer, err error, fs *flag.FlagSet) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "latchkey: %v\n", err)
	var u *usageError
	if errors.As(err, &u) {
		fs.Usage()
		return 2
	}
	return 1
}

// register adds the flags cmd accepts to fs.
func (f *adminFlags) register(fs *flag.FlagSet, cmd adminCommand) {
	fs.StringVar(&f.config, "config", "", "values.yaml-shaped configuration file, as for serve (default: embedded defaults)")
	for _, name := range cmd.flags {
		switch name {
		case "name":
			fs.StringVar(&f.name, "name", "", "display name of the account (required)")
		case "role":
			fs.StringVar(&f.role, "role", string(users.RoleViewer), "role: viewer or admin")
		case "password-stdin":
			fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of standard input (required)")
		case "ttl":
			fs.DurationVar(&f.ttl, "ttl", cmd.ttl, "how long the link stays valid")
		}
	}
}

// parseInterspersed parses fs from args allowing flags after positional
// arguments ("users add EMAIL --name NAME"), and returns the positional
// arguments. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("parsing arguments: %w", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// withStore loads the configuration, opens the data directory and runs cmd
// on it, closing the database before it returns.
func withStore(cmd adminCommand, f *adminFlags, pos []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) (err error) {
	cfg, err := server.Load(f.config, getenv)
	if err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	if cfg.OIDC.Enabled {
		return failf(nil, "accounts live in the external OpenID provider (config.authentication.oidc is enabled): manage them there, not with latchkey")
	}
	dbFile := filepath.Join(cfg.DataDir, server.DBFile)
	if !cmd.creates {
		if _, err := os.Stat(dbFile); errors.Is(err, os.ErrNotExist) {
			return failf(err, "no database at %s (latchkey.dataDir): create the first account with \"latchkey users add EMAIL --name NAME --password-stdin\" or start latchkey serve; if the data lives elsewhere, pass --config or set LATCHKEY_DATA_DIR", dbFile)
		}
	}
	db, path, err := server.OpenDB(cfg.DataDir, adminLockTimeout)
	if errors.Is(err, server.ErrDataDirInUse) {
		return failf(err, "%s is in use by the running latchkey server; use the web pages instead (%s/oidc/admin), or stop the server and run this command again", path, cfg.PublicURL)
	}
	if err != nil {
		return fmt.Errorf("opening the data directory: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	store, err := users.New(db, users.Options{ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain})
	if err != nil {
		return fmt.Errorf("opening the accounts in %s: %w", path, err)
	}
	a := &adminEnv{
		ctx:    context.Background(),
		cfg:    cfg,
		store:  store,
		stdout: stdout,
		audit:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	return cmd.run(a, f, pos)
}

// checkRole returns a usage error unless role is a defined role.
func checkRole(role string) error {
	if !users.Role(role).Valid() {
		return usagef("unknown role %q: the roles are %q and %q", role, users.RoleAdmin, users.RoleViewer)
	}
	return nil
}

// checkTTL returns a usage error unless --ttl is positive.
func checkTTL(f *adminFlags, _ []string, _ io.Reader) error {
	if f.ttl <= 0 {
		return usagef("--ttl must be positive, like 1h or 30m (got %s)", f.ttl)
	}
	return nil
}

// prepareUsersAdd checks the flags of `users add` and reads the password.
func prepareUsersAdd(f *adminFlags, _ []string, stdin io.Reader) error {
	if err := checkRole(f.role); err != nil {
		return err
	}
	if strings.TrimSpace(f.name) == "" {
		return usagef("users add: --name NAME is required")
	}
	if err := users.ValidateName(f.name); err != nil {
		return explain(err, "")
	}
	if !f.passwordStdin {
		return usagef("users add: the password is read from standard input only: pass --password-stdin " +
			"(for example: printf '%%s\\n' \"$PASSWORD\" | latchkey users add EMAIL --name NAME --password-stdin), " +
			"or let the person choose it with \"latchkey invite create EMAIL\"")
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return err
	}
	if err := users.ValidatePassword(pw); err != nil {
		return explain(err, "")
	}
	f.password = pw
	return nil
}

// readPassword reads the first line of stdin without its line ending.
func readPassword(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", failf(nil, "no password on standard input")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", failf(err, "no password on standard input (--password-stdin reads its first line)")
	}
	return line, nil
}

// explain turns an error of the users package into a one-line message for
// the operator. ref is how the account was named on the command line.
func explain(err error, ref string) error {
	switch {
	case errors.Is(err, users.ErrInvalidEmail):
		return failf(err, "not a valid email address")
	case errors.Is(err, users.ErrNotFound):
		return failf(err, "no account %s (see latchkey users list)", ref)
	case errors.Is(err, users.ErrInvalidRole):
		return failf(err, "unknown role: the roles are %q and %q", users.RoleAdmin, users.RoleViewer)
	case errors.Is(err, users.ErrNameRequired):
		return failf(err, "the name must not be empty")
	case errors.Is(err, users.ErrNameTooLong):
		return failf(err, "the name is longer than %d characters", users.MaxNameLength)
	case errors.Is(err, users.ErrInvalidName):
		return failf(err, "the name contains control characters or is not valid UTF-8")
	case errors.Is(err, users.ErrPasswordTooShort):
		return failf(err, "the password is too short: at least %d characters", users.MinPasswordLength)
	case errors.Is(err, users.ErrPasswordTooLong):
		return failf(err, "the password is too long: at most %d characters", users.MaxPasswordLength)
	}
	return fmt.Errorf("%w", err)
}

// explainEmail is explain for the errors about an address that may get an
// account.
func (a *adminEnv) explainEmail(err error, email string) error {
	switch {
	case errors.Is(err, users.ErrEmailDomain):
		return failf(err, "%s is not allowed: only @%s addresses may have accounts (config.authentication.basicAuth.validEmailDomain)", email, a.cfg.BasicAuth.ValidEmailDomain)
	case errors.Is(err, users.ErrEmailTaken):
		return failf(err, "%s already has an account (see latchkey users list)", email)
	case errors.Is(err, users.ErrInvalidEmail):
		return failf(err, "%q is not a valid email address", email)
	case errors.Is(err, users.ErrNoOrganization):
		return failf(err, "there is no account yet: create the first one (it becomes the administrator) with \"latchkey users add EMAIL --name NAME --password-stdin\" or on the web page (%s/)", a.cfg.PublicURL)
	}
	return explain(err, email)
}

// explainLastAdmin is explain for a change refused because u is the last
// active administrator.
func explainLastAdmin(err error, u users.User, ref string) error {
	if errors.Is(err, users.ErrLastAdmin) {
		return failf(err, "%s is the last active administrator: promote another account first", u.Email)
	}
	return explain(err, ref)
}

// usersAdd is `latchkey users add`.
func usersAdd(a *adminEnv, f *adminFlags, pos []string) error {
	email := pos[0]
	role := users.Role(f.role)
	first, err := a.store.NeedsSetup(a.ctx)
	if err != nil {
		return fmt.Errorf("users add: %w", err)
	}
	var u users.User
	if first {
		if u, err = a.store.SignUp(a.ctx, email, f.name, f.password); err != nil {
			return a.explainEmail(err, email)
		}
		if f.roleSet && role != u.Role {
			fmt.Fprintf(a.stdout, "note: %s is the first account, so it becomes the administrator (%s), not %s\n", u.Email, u.Role, role)
		} else {
			fmt.Fprintf(a.stdout, "note: %s is the first account: it creates the organization and is its administrator\n", u.Email)
		}
	} else {
		// An invitation carries the role and the organization; accept it
		// at once.
		inv, token, err := a.store.CreateInvitation(a.ctx, email, role, "", addInvitationTTL)
		if err != nil {
			return a.explainEmail(err, email)
		}
		if u, err = a.store.AcceptInvitation(a.ctx, token, f.name, f.password); err != nil {
			_, _ = a.store.RevokeInvitation(a.ctx, inv.ID)
			return a.explainEmail(err, inv.Email)
		}
	}
	a.auditf("account created", "user.created", "email", u.Email, "user_id", u.ID, "role", string(u.Role))
	fmt.Fprintf(a.stdout, "created %s (%s), id %s\n", u.Email, u.Role, u.ID)
	return nil
}

// usersList is `latchkey users list`.
func usersList(a *adminEnv, _ *adminFlags, _ []string) error {
	list, err := a.store.List(a.ctx)
	if err != nil {
		return fmt.Errorf("users list: %w", err)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no accounts yet: create the first with \"latchkey users add EMAIL --name NAME --password-stdin\"")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tROLE\tSTATUS\tLAST SIGN-IN\tID")
	for _, u := range list {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		last := "never"
		if !u.LastLoginAt.IsZero() {
			last = u.LastLoginAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Email, u.Name, u.Role, status, last, u.ID)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("users list: %w", err)
	}
	return nil
}

// resolve returns the account ref names, by email address or ID.
func (a *adminEnv) resolve(ref string) (users.User, error) {
	u, err := a.store.ByEmailOrID(a.ctx, ref)
	if err != nil {
		return users.User{}, explain(err, ref)
	}
	return u, nil
}

// usersSetRole is `latchkey users set-role`.
func usersSetRole(a *adminEnv, _ *adminFlags, pos []string) error {
	u, err := a.resolve(pos[0])
	if err != nil {
		return err
	}
	role := users.Role(pos[1])
	if u.Role == role {
		fmt.Fprintf(a.stdout, "%s is already %s\n", u.Email, role)
		return nil
	}
	updated, err := a.store.SetRole(a.ctx, u.ID, role)
	if err != nil {
		return explainLastAdmin(err, u, pos[0])
	}
	a.auditf("role changed", "user.role_changed", "email", updated.Email, "user_id", updated.ID,
		"from", string(u.Role), "to", string(updated.Role))
	fmt.Fprintf(a.stdout, "%s is now %s (was %s)\n", updated.Email, updated.Role, u.Role)
	return nil
}

// usersSetDisabled returns `latchkey users disable` (disabled true) or
// `latchkey users enable`.
func usersSetDisabled(disabled bool) func(a *adminEnv, _ *adminFlags, pos []string) error {
	return func(a *adminEnv, _ *adminFlags, pos []string) error {
		u, err := a.resolve(pos[0])
		if err != nil {
			return err
		}
		if u.Disabled == disabled {
			state := "active"
			if disabled {
				state = "disabled"
			}
			fmt.Fprintf(a.stdout, "%s is already %s\n", u.Email, state)
			return nil
		}
		if err := a.store.SetDisabled(a.ctx, u.ID, disabled); err != nil {
			return explainLastAdmin(err, u, pos[0])
		}
		if disabled {
			a.auditf("account disabled", "user.disabled", "email", u.Email, "user_id", u.ID)
			fmt.Fprintf(a.stdout, "disabled %s: it can no longer sign in, and its sessions have ended\n", u.Email)
		} else {
			a.auditf("account enabled", "user.enabled", "email", u.Email, "user_id", u.ID)
			fmt.Fprintf(a.stdout, "enabled %s: it can sign in again\n", u.Email)
		}
		return nil
	}
}

// usersRemove is `latchkey users remove`.
func usersRemove(a *adminEnv, _ *adminFlags, pos []string) error {
	u, err := a.resolve(pos[0])
	if err != nil {
		return err
	}
	if _, err := a.store.Remove(a.ctx, u.ID); err != nil {
		return explainLastAdmin(err, u, pos[0])
	}
	a.auditf("account removed", "user.removed", "email", u.Email, "user_id", u.ID, "role", string(u.Role))
	fmt.Fprintf(a.stdout, "removed %s (%s), id %s\n", u.Email, u.Role, u.ID)
	return nil
}

// usersResetLink is `latchkey users reset-link`.
func usersResetLink(a *adminEnv, f *adminFlags, pos []string) error {
	u, err := a.resolve(pos[0])
	if err != nil {
		return err
	}
	token, expires, err := a.store.CreateResetToken(a.ctx, u.ID, f.ttl)
	if err != nil {
		return explain(err, pos[0])
	}
	a.auditf("password reset link created", "reset_link.created", "email", u.Email, "user_id", u.ID,
		"expires", expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(a.stdout, "password reset link for %s, single use, valid until %s (it replaces any earlier link):\n",
		u.Email, expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(a.stdout, "  %s/oidc/reset?token=%s\n", a.cfg.PublicURL, url.QueryEscape(token))
	if u.Disabled {
		fmt.Fprintf(a.stdout, "note: %s is disabled; the link works only once it is enabled again (latchkey users enable)\n", u.Email)
	}
	return nil
}

// prepareInviteCreate checks the flags of `invite create`.
func prepareInviteCreate(f *adminFlags, pos []string, stdin io.Reader) error {
	if err := checkRole(f.role); err != nil {
		return err
	}
	return checkTTL(f, pos, stdin)
}

// inviteCreate is `latchkey invite create`.
func inviteCreate(a *adminEnv, f *adminFlags, pos []string) error {
	inv, token, err := a.store.CreateInvitation(a.ctx, pos[0], users.Role(f.role), "", f.ttl)
	if err != nil {
		return a.explainEmail(err, pos[0])
	}
	expires := inv.ExpiresAt.UTC().Format(time.RFC3339)
	a.auditf("invitation created", "invitation.created", "email", inv.Email, "invitation_id", inv.ID,
		"role", string(inv.Role), "expires", expires)
	fmt.Fprintf(a.stdout, "invitation %s for %s as %s, single use, valid until %s (it replaces any earlier invitation of this address):\n",
		inv.ID, inv.Email, inv.Role, expires)
	fmt.Fprintf(a.stdout, "  %s/oidc/invite?token=%s\n", a.cfg.PublicURL, url.QueryEscape(token))
	return nil
}

// inviteList is `latchkey invite list`.
func inviteList(a *adminEnv, _ *adminFlags, _ []string) error {
	list, err := a.store.Invitations(a.ctx)
	if err != nil {
		return fmt.Errorf("invite list: %w", err)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no pending invitations")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tEXPIRES")
	for _, inv := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", inv.ID, inv.Email, inv.Role, inv.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("invite list: %w", err)
	}
	return nil
}

// inviteRevoke is `latchkey invite revoke`.
func inviteRevoke(a *adminEnv, _ *adminFlags, pos []string) error {
	inv, err := a.store.RevokeInvitation(a.ctx, pos[0])
	if errors.Is(err, users.ErrNotFound) {
		// The ID is not repeated, in case it was a token pasted by
		// mistake.
		return failf(err, "no pending invitation with that ID (see latchkey invite list)")
	}
	if err != nil {
		return fmt.Errorf("invite revoke: %w", err)
	}
	a.auditf("invitation revoked", "invitation.revoked", "email", inv.Email, "invitation_id", inv.ID)
	fmt.Fprintf(a.stdout, "revoked invitation %s for %s: its link no longer works\n", inv.ID, inv.Email)
	return nil
}
