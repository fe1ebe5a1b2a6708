package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzDecodeStatusReport feeds arbitrary bodies to Decode as the hub's report endpoint
// does. Seeds: testdata/report.json and testdata/fuzz/FuzzDecodeStatusReport/.
//
// Properties: Decode never panics; every rejection is one of its typed errors that
// maps to a 4xx ErrorResponse, and a validation error starts with its field; an
// accepted report re-encodes to a body that is accepted again (what the hub stores
// stays valid), and holds no Secret value in clear text.
func FuzzDecodeStatusReport(f *testing.F) {
	data, err := os.ReadFile("testdata/report.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, body []byte) {
		var r StatusReport
		err := Decode(bytes.NewReader(body), MaxReportBytes, &r)
		if err != nil {
			resp, ok := ErrorResponseFor(err)
			if !ok {
				t.Fatalf("untyped error: %v", err)
			}
			if s := resp.Code.HTTPStatus(); s < 400 || s > 499 {
				t.Fatalf("error %v maps to status %d", err, s)
			}
			var fe *FieldError
			if errors.As(err, &fe) && !strings.HasPrefix(err.Error(), fe.Field+": ") {
				t.Fatalf("field error %q does not start with its field %q", err, fe.Field)
			}
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&r); err != nil {
			t.Fatalf("re-encode an accepted report: %v", err)
		}
		var again StatusReport
		if err := Decode(&buf, MaxReportBytes, &again); err != nil {
			t.Fatalf("an accepted report is rejected once re-encoded: %v\n%s", err, buf.Bytes())
		}
		for i, d := range r.Drift {
			if d.Object.Group != "" || d.Object.Kind != "Secret" {
				continue
			}
			for j, fd := range d.Fields {
				if !isSecretData(fd.Path) {
					continue
				}
				for _, v := range []json.RawMessage{fd.Desired, fd.Live} {
					if len(v) > 0 && !isMasked(v) {
						t.Fatalf("drift[%d].fields[%d] of a Secret holds %s in clear", i, j, v)
					}
				}
			}
		}
	})
}
