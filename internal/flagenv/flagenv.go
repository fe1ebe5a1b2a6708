// Package flagenv binds command-line flags to OUTPOST_* environment variables and
// reports bad configuration values by flag and variable, for every outpost server
// command (hub and agent): a flag given on the command line wins over its variable,
// and an error reads "--git-url (OUTPOST_GIT_URL): ...".
package flagenv

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Error is a bad configuration value, naming its flag and environment variable.
type Error struct {
	// Flag is the flag name without dashes.
	Flag string
	// Env is the matching environment variable.
	Env string
	// Err says what is wrong.
	Err error
}

// Error formats as "--flag (ENV): err".
func (e *Error) Error() string { return fmt.Sprintf("--%s (%s): %v", e.Flag, e.Env, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// EnvName is the environment variable of a flag: --git-url → OUTPOST_GIT_URL.
func EnvName(flag string) string {
	return "OUTPOST_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Errorf returns an *Error for flag.
func Errorf(flag, format string, args ...any) error {
	return &Error{Flag: flag, Env: EnvName(flag), Err: fmt.Errorf(format, args...)}
}

// Apply sets every flag not given on the command line from its OUTPOST_* variable,
// found with lookup (os.LookupEnv in production). Malformed values are *Error values,
// joined.
func Apply(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, &Error{Flag: f.Name, Env: name, Err: err})
		}
	})
	return errors.Join(errs...)
}

// Readable checks that an optional file ("" is fine) exists and can be read.
func Readable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
