package repo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is a problem with the repository's content. It names the repo-relative
// file, the 1-based line (0 when the problem is not tied to a line) and the field
// path inside the file (empty when it is about the whole file), e.g.
//
//	clusters/prod/apps.yaml:4: apps[1].version: must not be empty
//
// A content error is permanent for a given Git revision: retrying the same
// revision gives the same error, so callers report it rather than retry.
type Error struct {
	// File is the repo-relative path with forward slashes, e.g. "clusters/prod/apps.yaml".
	File string `json:"file"`
	// Line is the 1-based line in File, or 0.
	Line int `json:"line,omitempty"`
	// Field is the path of the offending field, e.g. "apps[1].version", or empty.
	Field string `json:"field,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"msg"`
	// Err is the underlying error, if any (e.g. an fs.PathError).
	Err error `json:"-"`
}

// Error formats as "file:line: field: msg", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errAt builds an *Error for a file, line and field.
func errAt(file string, line int, field, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// CycleError is returned by Order when dependsOn edges form a cycle. Cycle lists
// the apps on the cycle, starting and ending with the same app.
type CycleError struct {
	Cycle []string `json:"cycle"`
}

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Cycle, " -> ")
}

// UnknownDependencyError is returned by Order when an app depends on an app that
// is not part of the input.
type UnknownDependencyError struct {
	App       string `json:"app"`
	DependsOn string `json:"dependsOn"`
}

func (e *UnknownDependencyError) Error() string {
	return fmt.Sprintf("app %q depends on unknown app %q", e.App, e.DependsOn)
}

// IsContentError reports whether err (or an error it wraps) is a problem with the
// repository's content (*Error, *CycleError, *UnknownDependencyError), as opposed to
// an I/O or cancellation error that may succeed on retry.
func IsContentError(err error) bool {
	var e *Error
	var c *CycleError
	var u *UnknownDependencyError
	return errors.As(err, &e) || errors.As(err, &c) || errors.As(err, &u)
}
