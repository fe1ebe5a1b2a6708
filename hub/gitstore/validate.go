package gitstore

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/outpost-gitops/outpost/sync/repo"
)

// Author is who made a change: the API caller as the author of a commit, or the
// hub as its committer.
type Author struct {
	// Name is the person's or client's name, e.g. "Jane Doe".
	Name string `json:"name"`
	// Email is the address recorded in the commit.
	Email string `json:"email"`
}

// String formats as "Name <email>".
func (a Author) String() string { return a.Name + " <" + a.Email + ">" }

// maxIdentityLen bounds an author's name and email.
const maxIdentityLen = 256

// validate checks that a can be written into a commit header: bounded, no
// control characters and no '<' or '>' (which delimit the email). name and
// email are the inputs a ValidationError names (the author's or the committer's).
func (a Author) validate(name, email Input) error {
	check := func(field Input, v string) error {
		switch {
		case strings.TrimSpace(v) == "":
			return &ValidationError{Field: field, Msg: "must not be empty"}
		case len(v) > maxIdentityLen:
			return &ValidationError{Field: field, Msg: fmt.Sprintf("is %d bytes long, more than the limit of %d", len(v), maxIdentityLen)}
		case strings.IndexFunc(v, unicode.IsControl) >= 0 || strings.ContainsAny(v, "<>"):
			return &ValidationError{Field: field, Msg: fmt.Sprintf("%q must not contain control characters, '<' or '>'", v)}
		}
		return nil
	}
	if err := check(name, a.Name); err != nil {
		return err
	}
	if err := check(email, a.Email); err != nil {
		return err
	}
	if strings.ContainsAny(a.Email, " \t") {
		return &ValidationError{Field: email, Msg: fmt.Sprintf("%q must not contain whitespace", a.Email)}
	}
	return nil
}

// validateName checks a cluster or app name (field is InputCluster or
// InputApp) with the repository contract's rule: a DNS-1123 label, so never a
// path.
func validateName(field Input, name string) error {
	if err := repo.ValidateName(name); err != nil {
		return &ValidationError{Field: field, Msg: string(field) + " " + err.Error(), Err: err}
	}
	return nil
}

// validateVersion checks an app version with the repository contract's rule.
func validateVersion(v string) error {
	if err := repo.ValidateVersion(v); err != nil {
		return &ValidationError{Field: InputVersion, Msg: err.Error(), Err: err}
	}
	return nil
}

// validateRevision checks an ifMatch revision: empty (no check) or a full
// 40-digit hexadecimal commit id.
func validateRevision(field Input, rev string) error {
	if rev == "" {
		return nil
	}
	if len(rev) != 40 {
		return &ValidationError{Field: field, Msg: fmt.Sprintf("revision must be a full 40-digit commit id, got %d characters", len(rev))}
	}
	if _, err := hex.DecodeString(rev); err != nil {
		return &ValidationError{Field: field, Msg: "revision must be hexadecimal"}
	}
	return nil
}
