package agent

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	cases := map[string]struct {
		in   string
		n    int
		want string
	}{
		"short enough":           {in: "apply failed", n: 20, want: "apply failed"},
		"cut with marker":        {in: "abcdefghij", n: 8, want: "abcde..."},
		"rune split by the cut":  {in: "ab€cdef", n: 6, want: "ab..."},
		"invalid byte kept safe": {in: "a\xffbcdefgh", n: 8, want: "abcd..."},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := truncate(tc.in, tc.n)
			if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q, want %q (at most %d bytes, valid UTF-8)", tc.in, tc.n, got, tc.want, tc.n)
			}
		})
	}
}
