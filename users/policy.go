package users

import "fmt"

// SignupPolicy decides who may create an account with SignUp.
// AcceptInvitation works under every policy.
type SignupPolicy string

// Sign-up policies.
const (
	// SignupOpen lets anyone whose address satisfies
	// Options.ValidEmailDomain sign up; the first account becomes the
	// admin and every later one joins as RoleViewer. It is the default.
	SignupOpen SignupPolicy = "open"
	// SignupInvite lets SignUp create only the very first account, the
	// admin of the new organization; every later account needs an
	// invitation (see CreateInvitation and AcceptInvitation).
	SignupInvite SignupPolicy = "invite"
)

// ParseSignupPolicy parses a sign-up policy from configuration: "" or
// "open" is SignupOpen, "invite" is SignupInvite. Anything else is an error
// naming the accepted values.
func ParseSignupPolicy(s string) (SignupPolicy, error) {
	switch p := SignupPolicy(s); p {
	case "", SignupOpen:
		return SignupOpen, nil
	case SignupInvite:
		return SignupInvite, nil
	}
	return "", fmt.Errorf("users: unknown sign-up policy %q: want %q or %q (empty means %q)",
		s, SignupOpen, SignupInvite, SignupOpen)
}
