package repo

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValidateNameAndVersionReturnInvalidError(t *testing.T) {
	long := strings.Repeat("v", MaxVersionLen+1)
	tests := map[string]struct {
		check   func(string) error
		value   string
		want    *InvalidError // nil: valid
		wantMsg string
	}{
		"valid name":          {check: ValidateName, value: "web"},
		"empty name":          {check: ValidateName, value: "", want: &InvalidError{Field: "name", Reason: "must not be empty"}, wantMsg: "name must not be empty"},
		"path name":           {check: ValidateName, value: "../etc", want: &InvalidError{Field: "name", Value: "../etc", Reason: `"../etc" must not contain path characters ('/', '\', '..')`}, wantMsg: `name "../etc" must not contain path characters ('/', '\', '..')`},
		"control name":        {check: ValidateName, value: "a\x01", want: &InvalidError{Field: "name", Value: "a\x01", Reason: `"a\x01" must not contain control characters`}},
		"upper-case name":     {check: ValidateName, value: "Web", want: &InvalidError{Field: "name", Value: "Web"}, wantMsg: `name "Web" is not a valid name: `},
		"valid version":       {check: ValidateVersion, value: "v1.2.3+build"},
		"empty version":       {check: ValidateVersion, value: "", want: &InvalidError{Field: "version", Reason: "must not be empty"}, wantMsg: "version must not be empty"},
		"long version":        {check: ValidateVersion, value: long, want: &InvalidError{Field: "version", Value: long, Reason: "is 129 characters long, more than the limit of 128"}},
		"whitespace version":  {check: ValidateVersion, value: "v 1", want: &InvalidError{Field: "version", Value: "v 1", Reason: `"v 1" must start with a letter or digit and hold only letters, digits and ._+~:@/-`}},
		"leading dot version": {check: ValidateVersion, value: ".v1", want: &InvalidError{Field: "version", Value: ".v1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.check(tc.value)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(fmt.Errorf("wrapped: %w", err), &ie) {
				t.Fatalf("err = %v (%T), want *InvalidError", err, err)
			}
			if ie.Field != tc.want.Field || ie.Value != tc.want.Value || (tc.want.Reason != "" && ie.Reason != tc.want.Reason) || ie.Reason == "" {
				t.Errorf("err = %+v, want %+v", ie, tc.want)
			}
			if ie.Error() != ie.Field+" "+ie.Reason || !strings.HasPrefix(ie.Error(), tc.wantMsg) {
				t.Errorf("Error() = %q, want it to start with %q", ie.Error(), tc.wantMsg)
			}
		})
	}
}

// A name or version rejected inside a file is a content *Error that names the
// field and says only the reason, and wraps the *InvalidError.
func TestParseWrapsInvalidError(t *testing.T) {
	_, err := ParseAppsFile(appsPath, []byte("apps:\n  - name: web\n    version: \"\"\n"))
	var re *Error
	var ie *InvalidError
	if !errors.As(err, &re) || !errors.As(err, &ie) {
		t.Fatalf("err = %v (%T), want a *Error wrapping an *InvalidError", err, err)
	}
	if re.Field != "apps[0].version" || re.Msg != "must not be empty" || ie.Field != "version" {
		t.Errorf("err = %+v wrapping %+v, want field apps[0].version, message %q", re, ie, "must not be empty")
	}
}
