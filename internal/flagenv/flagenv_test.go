package flagenv

import (
	"errors"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApply(t *testing.T) {
	cases := map[string]struct {
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		"default":                {want: time.Minute},
		"from env":               {env: map[string]string{"OUTPOST_GIT_POLL_INTERVAL": "5s"}, want: 5 * time.Second},
		"flag wins":              {args: []string{"--git-poll-interval=2s"}, env: map[string]string{"OUTPOST_GIT_POLL_INTERVAL": "5s"}, want: 2 * time.Second},
		"malformed env is named": {env: map[string]string{"OUTPOST_GIT_POLL_INTERVAL": "soon"}, wantErr: "--git-poll-interval (OUTPOST_GIT_POLL_INTERVAL): "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			d := fs.Duration("git-poll-interval", time.Minute, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := Apply(fs, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != "" {
				var fe *Error
				if !errors.As(err, &fe) || fe.Flag != "git-poll-interval" || err.Error()[:len(tc.wantErr)] != tc.wantErr {
					t.Fatalf("err = %v, want an *Error starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || *d != tc.want {
				t.Fatalf("got %s, %v; want %s", *d, err, tc.want)
			}
		})
	}
}

func TestReadable(t *testing.T) {
	if err := Readable(""); err != nil {
		t.Errorf("empty path: %v", err)
	}
	if err := Readable(t.TempDir() + "/missing"); err == nil {
		t.Error("missing file: want an error")
	}
}
