package v1

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exampleReport loads testdata/report.json, the example of docs/api.md.
func exampleReport(t testing.TB) *StatusReport {
	t.Helper()
	data, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r StatusReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestExampleReportRoundTrips(t *testing.T) {
	data, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r StatusReport
	if err := Decode(strings.NewReader(string(data)), MaxReportBytes, &r); err != nil {
		t.Fatalf("the documented example is rejected: %v", err)
	}
	out, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("re-encoding the example changes it:\nwant %s\ngot  %s", data, out)
	}
}

func TestValidateReport(t *testing.T) {
	long := strings.Repeat("x", MaxMessageLen+1)
	tests := map[string]struct {
		change func(r *StatusReport)
		field  string // "" when the report must stay valid
	}{
		"example is valid":            {change: func(r *StatusReport) {}},
		"heartbeat without apps":      {change: func(r *StatusReport) { r.Apps, r.Drift = nil, nil }},
		"cluster empty":               {change: func(r *StatusReport) { r.Cluster = "" }, field: "cluster"},
		"cluster with slash":          {change: func(r *StatusReport) { r.Cluster = "prod/eu" }, field: "cluster"},
		"cluster with dots":           {change: func(r *StatusReport) { r.Cluster = ".." }, field: "cluster"},
		"cluster upper case":          {change: func(r *StatusReport) { r.Cluster = "Prod" }, field: "cluster"},
		"cluster too long":            {change: func(r *StatusReport) { r.Cluster = strings.Repeat("a", 64) }, field: "cluster"},
		"cluster newline":             {change: func(r *StatusReport) { r.Cluster = "prod\n" }, field: "cluster"},
		"agent id empty":              {change: func(r *StatusReport) { r.Agent.ID = "" }, field: "agent.id"},
		"agent id control":            {change: func(r *StatusReport) { r.Agent.ID = "a\x00b" }, field: "agent.id"},
		"agent pod bad utf8":          {change: func(r *StatusReport) { r.Agent.Pod = "\xff" }, field: "agent.pod"},
		"sentAt zero":                 {change: func(r *StatusReport) { r.SentAt = time.Time{} }, field: "sentAt"},
		"sentAt year 1970":            {change: func(r *StatusReport) { r.SentAt = time.Unix(0, 0) }, field: "sentAt"},
		"sentAt year 3000":            {change: func(r *StatusReport) { r.SentAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, field: "sentAt"},
		"app name bad":                {change: func(r *StatusReport) { r.Apps[1].App = "Pay_ments" }, field: "apps[1].app"},
		"app twice":                   {change: func(r *StatusReport) { r.Apps[1].App = "web" }, field: "apps[1].app"},
		"version bad":                 {change: func(r *StatusReport) { r.Apps[1].Version = "1.0 beta" }, field: "apps[1].version"},
		"version empty is allowed":    {change: func(r *StatusReport) { r.Apps[0].Version = "" }},
		"revision short":              {change: func(r *StatusReport) { r.Apps[0].Revision = "3f1c2a9" }, field: "apps[0].revision"},
		"revision upper":              {change: func(r *StatusReport) { r.Apps[0].Revision = strings.ToUpper(r.Apps[0].Revision) }, field: "apps[0].revision"},
		"revision sha256":             {change: func(r *StatusReport) { r.Apps[0].Revision = strings.Repeat("ab", 32) }},
		"sequence zero":               {change: func(r *StatusReport) { r.Apps[0].Generation.Sequence = 0 }, field: "apps[0].generation.sequence"},
		"epoch negative":              {change: func(r *StatusReport) { r.Apps[0].Generation.Epoch = -1 }, field: "apps[0].generation.epoch"},
		"phase unknown":               {change: func(r *StatusReport) { r.Apps[0].Phase = "Done" }, field: "apps[0].phase"},
		"phase empty":                 {change: func(r *StatusReport) { r.Apps[0].Phase = "" }, field: "apps[0].phase"},
		"failed without error is ok":  {change: func(r *StatusReport) { r.Apps[1].Error = nil }},
		"health unknown value":        {change: func(r *StatusReport) { r.Apps[0].Health.Status = "Great" }, field: "apps[0].health.status"},
		"health message too long":     {change: func(r *StatusReport) { r.Apps[1].Health.Message = long }, field: "apps[1].health.message"},
		"health message multiline ok": {change: func(r *StatusReport) { r.Apps[1].Health.Message = "a\n\tb" }},
		"health message escape":       {change: func(r *StatusReport) { r.Apps[1].Health.Message = "a\x1b[31m" }, field: "apps[1].health.message"},
		"health object kind empty":    {change: func(r *StatusReport) { r.Apps[1].Health.Object.Kind = "" }, field: "apps[1].health.object.kind"},
		"count negative":              {change: func(r *StatusReport) { r.Apps[0].Counts.Pruned = -1 }, field: "apps[0].counts.pruned"},
		"count huge":                  {change: func(r *StatusReport) { r.Apps[0].Counts.Desired = MaxCount + 1 }, field: "apps[0].counts.desired"},
		"too many changes": {change: func(r *StatusReport) {
			r.Apps[0].Changes = make([]ObjectChange, MaxChanges+1)
		}, field: "apps[0].changes"},
		"change action bad":                {change: func(r *StatusReport) { r.Apps[0].Changes[2].Action = "deleted" }, field: "apps[0].changes[2].action"},
		"change group bad":                 {change: func(r *StatusReport) { r.Apps[0].Changes[0].Group = "Apps" }, field: "apps[0].changes[0].group"},
		"change namespace bad":             {change: func(r *StatusReport) { r.Apps[0].Changes[0].Namespace = "a.b" }, field: "apps[0].changes[0].namespace"},
		"change name slash":                {change: func(r *StatusReport) { r.Apps[0].Changes[0].Name = "a/b" }, field: "apps[0].changes[0].name"},
		"change name colon ok":             {change: func(r *StatusReport) { r.Apps[0].Changes[0].Name = "system:web" }},
		"change kind digit":                {change: func(r *StatusReport) { r.Apps[0].Changes[0].Kind = "9Lives" }, field: "apps[0].changes[0].kind"},
		"changesOmitted":                   {change: func(r *StatusReport) { r.Apps[0].ChangesOmitted = -3 }, field: "apps[0].changesOmitted"},
		"error stage bad":                  {change: func(r *StatusReport) { r.Apps[1].Error.Stage = "deploy" }, field: "apps[1].error.stage"},
		"error message empty":              {change: func(r *StatusReport) { r.Apps[1].Error.Message = "" }, field: "apps[1].error.message"},
		"error file newline":               {change: func(r *StatusReport) { r.Apps[1].Error.File = "apps/x\n" }, field: "apps[1].error.file"},
		"error line negative":              {change: func(r *StatusReport) { r.Apps[1].Error.Line = -1 }, field: "apps[1].error.line"},
		"error object name":                {change: func(r *StatusReport) { r.Apps[1].Error.Object.Name = "" }, field: "apps[1].error.object.name"},
		"duration negative":                {change: func(r *StatusReport) { r.Apps[0].Durations.ApplyMs = -5 }, field: "apps[0].durations.applyMs"},
		"duration over a day":              {change: func(r *StatusReport) { r.Apps[0].Durations.TotalMs = 25 * 3600 * 1000 }, field: "apps[0].durations.totalMs"},
		"lastSynced after sent":            {change: func(r *StatusReport) { r.Apps[0].LastSyncedAt = r.SentAt.Add(time.Hour) }, field: "apps[0].lastSyncedAt"},
		"lastSynced small skew":            {change: func(r *StatusReport) { r.Apps[0].LastSyncedAt = r.SentAt.Add(30 * time.Second) }},
		"drift app not reported":           {change: func(r *StatusReport) { r.Drift[0].App = "other" }, field: "drift[0].app"},
		"drift object twice":               {change: func(r *StatusReport) { r.Drift[1].Object = r.Drift[0].Object }, field: "drift[1].object"},
		"drift without version":            {change: func(r *StatusReport) { r.Drift[0].Object.Version = "" }, field: "drift[0].object.version"},
		"drift without fields":             {change: func(r *StatusReport) { r.Drift[0].Fields = nil }, field: "drift[0].fields"},
		"deleted without fields":           {change: func(r *StatusReport) { r.Drift[0].Fields, r.Drift[0].Deleted = nil, true }},
		"drift observedAt zero":            {change: func(r *StatusReport) { r.Drift[0].ObservedAt = time.Time{} }, field: "drift[0].observedAt"},
		"drift time from a fast apiserver": {change: func(r *StatusReport) { r.Drift[0].Fields[1].Time = r.SentAt.Add(time.Hour) }},
		"drift time insane":                {change: func(r *StatusReport) { r.Drift[0].Fields[1].Time = time.Unix(1, 0) }, field: "drift[0].fields[1].time"},
		"drift path empty":                 {change: func(r *StatusReport) { r.Drift[0].Fields[1].Path = "" }, field: "drift[0].fields[1].path"},
		"drift value not json":             {change: func(r *StatusReport) { r.Drift[0].Fields[0].Live = json.RawMessage("{") }, field: "drift[0].fields[0].live"},
		"drift value too big": {change: func(r *StatusReport) {
			r.Drift[0].Fields[0].Live = json.RawMessage(`"` + strings.Repeat("v", MaxValueBytes) + `"`)
		}, field: "drift[0].fields[0].live"},
		"drift operation bad":   {change: func(r *StatusReport) { r.Drift[0].Fields[0].Operation = "Patch" }, field: "drift[0].fields[0].operation"},
		"drift subresource bad": {change: func(r *StatusReport) { r.Drift[0].Fields[0].Subresource = "Scale" }, field: "drift[0].fields[0].subresource"},
		"drift field removed": {change: func(r *StatusReport) {
			r.Drift[0].Fields[0].Live, r.Drift[0].Fields[0].Manager = json.RawMessage("null"), ""
		}},
		"secret value in clear": {change: func(r *StatusReport) {
			r.Drift[1].Fields[0].Live = json.RawMessage(`"c2VjcmV0"`)
		}, field: "drift[1].fields[0].live"},
		"secret data map in clear": {change: func(r *StatusReport) {
			r.Drift[1].Fields[0].Path = "data"
			r.Drift[1].Fields[0].Desired = json.RawMessage(`{"tls.key":"(redacted)","tls.crt":"LS0t"}`)
		}, field: "drift[1].fields[0].desired"},
		"secret data map masked": {change: func(r *StatusReport) {
			r.Drift[1].Fields[0].Path = "stringData"
			r.Drift[1].Fields[0].Desired = json.RawMessage(`{"a":"(redacted)","b":"(redacted)"}`)
		}},
		"secret label in clear ok": {change: func(r *StatusReport) {
			r.Drift[1].Fields[0].Path = "metadata.labels.team"
			r.Drift[1].Fields[0].Live = json.RawMessage(`"blue"`)
		}},
		"secret number in clear": {change: func(r *StatusReport) {
			r.Drift[1].Fields[0].Desired = json.RawMessage(`12345`)
		}, field: "drift[1].fields[0].desired"},
		"configmap data in clear ok": {change: func(r *StatusReport) {
			r.Drift[1].Object.Kind = "ConfigMap"
			r.Drift[1].Fields[0].Live = json.RawMessage(`"plain"`)
		}},
		"too many apps": {change: func(r *StatusReport) {
			r.Apps = make([]AppStatus, MaxApps+1)
		}, field: "apps"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := exampleReport(t)
			tc.change(r)
			err := r.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want a *FieldError for %s, got %v", tc.field, err)
			}
			if fe.Field != tc.field {
				t.Fatalf("want field %s, got %v", tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Errorf("message %q does not start with the field", err)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := map[string]bool{
		"web": true, "prod-eu-1": true, "a": true, "0abc": true, strings.Repeat("a", 63): true,
		"": false, "-web": false, "web-": false, "Web": false, "web_1": false, "a.b": false,
		"a/b": false, "..": false, "a\tb": false, "wéb": false, strings.Repeat("a", 64): false,
	}
	for name, valid := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateName("name", name)
			if (err == nil) != valid {
				t.Fatalf("ValidateName(%q) = %v, want valid=%v", name, err, valid)
			}
		})
	}
}

func TestValidateVersion(t *testing.T) {
	tests := map[string]bool{
		"1.4.2": true, "v1.0.0-rc.1+build.5": true, "sha-3f1c2a9": true, "2024.01.01": true, "img@sha256:abc": true,
		"": false, "-1": false, ".1": false, "1 0": false, "1\n": false, "${X}": false, "a\"b": false,
		strings.Repeat("1", MaxVersionLen): true, strings.Repeat("1", MaxVersionLen+1): false,
	}
	for v, valid := range tests {
		t.Run(v, func(t *testing.T) {
			err := ValidateVersion("version", v)
			if (err == nil) != valid {
				t.Fatalf("ValidateVersion(%q) = %v, want valid=%v", v, err, valid)
			}
		})
	}
}

func TestValidateLabels(t *testing.T) {
	tests := map[string]struct {
		labels map[string]string
		valid  bool
	}{
		"none":             {labels: nil, valid: true},
		"simple":           {labels: map[string]string{"env": "prod", "region": "eu-west-1"}, valid: true},
		"prefixed":         {labels: map[string]string{"topology.kubernetes.io/region": "eu"}, valid: true},
		"empty value":      {labels: map[string]string{"canary": ""}, valid: true},
		"empty key":        {labels: map[string]string{"": "x"}},
		"bad prefix":       {labels: map[string]string{"Example.com/x": "y"}},
		"value with space": {labels: map[string]string{"env": "pro d"}},
		"value newline":    {labels: map[string]string{"env": "prod\n"}},
		"value too long":   {labels: map[string]string{"env": strings.Repeat("a", 64)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateLabels("labels", tc.labels)
			if (err == nil) != tc.valid {
				t.Fatalf("ValidateLabels(%v) = %v, want valid=%v", tc.labels, err, tc.valid)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	tests := map[string]struct {
		req   Validator
		field string
	}{
		"register ok":        {req: &RegisterClusterRequest{Name: "prod-eu", Labels: map[string]string{"env": "prod"}}},
		"register bad name":  {req: &RegisterClusterRequest{Name: "prod eu"}, field: "name"},
		"register bad label": {req: &RegisterClusterRequest{Name: "p", Labels: map[string]string{"env": "a b"}}, field: `labels["env"]`},
		"set ok":             {req: &SetVersionRequest{Version: "1.4.2"}},
		"set empty":          {req: &SetVersionRequest{}, field: "version"},
		"set newline":        {req: &SetVersionRequest{Version: "1.4.2\n"}, field: "version"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("want an error on %s, got %v", tc.field, err)
			}
		})
	}
}

func TestGenerationCompare(t *testing.T) {
	tests := map[string]struct {
		a, b Generation
		want int
	}{
		"same":             {a: Generation{5, 3}, b: Generation{5, 3}, want: 0},
		"older sequence":   {a: Generation{5, 2}, b: Generation{5, 3}, want: -1},
		"newer sequence":   {a: Generation{5, 4}, b: Generation{5, 3}, want: 1},
		"newer epoch wins": {a: Generation{6, 1}, b: Generation{5, 99}, want: 1},
		"older epoch":      {a: Generation{4, 99}, b: Generation{5, 1}, want: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.a.Compare(tc.b); got != tc.want {
				t.Fatalf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := tc.b.Compare(tc.a); got != -tc.want {
				t.Fatalf("%v.Compare(%v) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	valid, err := os.ReadFile("testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		body  string
		limit int64
		code  ErrorCode // "" when decoding must succeed
		field string
	}{
		"valid":           {body: string(valid), limit: MaxReportBytes},
		"unknown field":   {body: strings.Replace(string(valid), `"cluster"`, `"future": 1, "cluster"`, 1), limit: MaxReportBytes},
		"too large":       {body: string(valid), limit: 100, code: CodeTooLarge},
		"malformed":       {body: `{"cluster": "a",`, limit: MaxReportBytes, code: CodeBadRequest},
		"trailing data":   {body: string(valid) + `{}`, limit: MaxReportBytes, code: CodeBadRequest},
		"trailing spaces": {body: string(valid) + "\n\n ", limit: MaxReportBytes},
		"wrong type":      {body: `{"cluster": 5}`, limit: MaxReportBytes, code: CodeBadRequest, field: "cluster"},
		"bad time":        {body: `{"cluster": "a", "sentAt": "yesterday"}`, limit: MaxReportBytes, code: CodeBadRequest},
		"invalid":         {body: strings.Replace(string(valid), `"prod-eu"`, `"prod/eu"`, 1), limit: MaxReportBytes, code: CodeInvalid, field: "cluster"},
		"empty":           {body: ``, limit: MaxReportBytes, code: CodeBadRequest},
		"null":            {body: `null`, limit: MaxReportBytes, code: CodeInvalid, field: "cluster"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var r StatusReport
			err := Decode(strings.NewReader(tc.body), tc.limit, &r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			resp, ok := ErrorResponseFor(err)
			if !ok {
				t.Fatalf("error %v maps to no response", err)
			}
			if resp.Code != tc.code || resp.Field != tc.field {
				t.Fatalf("got %+v, want code %s field %q", resp, tc.code, tc.field)
			}
			if resp.Code.HTTPStatus()/100 != 4 {
				t.Errorf("code %s maps to status %d, want 4xx", resp.Code, resp.Code.HTTPStatus())
			}
		})
	}
}

func TestErrorResponse(t *testing.T) {
	tests := map[string]struct {
		code   ErrorCode
		status int
	}{
		"invalid":      {code: CodeInvalid, status: 400},
		"unauthorized": {code: CodeUnauthorized, status: 401},
		"forbidden":    {code: CodeForbidden, status: 403},
		"not found":    {code: CodeNotFound, status: 404},
		"conflict":     {code: CodeConflict, status: 409},
		"too large":    {code: CodeTooLarge, status: 413},
		"too many":     {code: CodeTooManyRequests, status: 429},
		"unavailable":  {code: CodeUnavailable, status: 503},
		"unknown":      {code: "what", status: 500},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.code.HTTPStatus(); got != tc.status {
				t.Fatalf("%s.HTTPStatus() = %d, want %d", tc.code, got, tc.status)
			}
		})
	}
	if _, ok := ErrorResponseFor(errors.New("disk full")); ok {
		t.Error("an untyped error maps to a 4xx response")
	}
	e := &ErrorResponse{Code: CodeInvalid, Message: "must not be empty", Field: "apps[2].version"}
	if got, want := e.Error(), "invalid: apps[2].version: must not be empty"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
