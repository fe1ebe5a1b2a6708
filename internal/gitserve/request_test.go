package gitserve

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// pkt encodes lines as pkt-lines; "" is a flush.
func pkt(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			b.WriteString("0000")
			continue
		}
		fmt.Fprintf(&b, "%04x%s", len(l)+4, l)
	}
	return b.String()
}

var (
	h1 = plumbing.NewHash(strings.Repeat("1", 40))
	h2 = plumbing.NewHash(strings.Repeat("2", 40))
	h3 = plumbing.NewHash(strings.Repeat("3", 40))
)

func TestParseUploadRequest(t *testing.T) {
	tests := map[string]struct {
		in   string
		want *uploadRequest
		bad  bool
	}{
		"clone": {
			in: pkt("want "+h1.String()+" multi_ack_detailed side-band-64k agent=git/2.39\n", "want "+h2.String()+"\n", "", "done\n"),
			want: &uploadRequest{wants: []plumbing.Hash{h1, h2}, negotiates: true, done: true,
				caps: map[string]string{"multi_ack_detailed": "", "side-band-64k": "", "agent": "git/2.39"}},
		},
		"round without done": {
			in:   pkt("want "+h1.String()+"\n", "", "have "+h2.String()+"\n", "have "+h3.String()+"\n", ""),
			want: &uploadRequest{wants: []plumbing.Hash{h1}, haves: []plumbing.Hash{h2, h3}, negotiates: true, caps: map[string]string{}},
		},
		"deepen only": {
			in:   pkt("want "+h1.String()+" shallow\n", "shallow "+h2.String()+"\n", "deepen 1\n", ""),
			want: &uploadRequest{wants: []plumbing.Hash{h1}, shallows: []plumbing.Hash{h2}, depth: 1, caps: map[string]string{"shallow": ""}},
		},
		"unshallow": {
			in:   pkt("want "+h1.String()+"\n", "deepen 2147483647\n", "", "done\n"),
			want: &uploadRequest{wants: []plumbing.Hash{h1}, depth: maxDepth, negotiates: true, done: true, caps: map[string]string{}},
		},
		"empty":                    {in: "", bad: true},
		"no want":                  {in: pkt(""), bad: true},
		"truncated":                {in: pkt("want " + h1.String() + "\n"), bad: true},
		"short hash":               {in: pkt("want abc\n", ""), bad: true},
		"caps on second want":      {in: pkt("want "+h1.String()+"\n", "want "+h2.String()+" ofs-delta\n", ""), bad: true},
		"negative depth":           {in: pkt("want "+h1.String()+"\n", "deepen -1\n", ""), bad: true},
		"deepen-not":               {in: pkt("want "+h1.String()+"\n", "deepen-not main\n", ""), bad: true},
		"filter":                   {in: pkt("want "+h1.String()+"\n", "filter blob:none\n", ""), bad: true},
		"junk in haves":            {in: pkt("want "+h1.String()+"\n", "", "hello\n"), bad: true},
		"bad pkt length":           {in: "00zzwant", bad: true},
		"ERR line":                 {in: pkt("ERR boom\n"), bad: true},
		"v2 command":               {in: pkt("command=fetch\n", ""), bad: true},
		"have before the flush":    {in: pkt("want "+h1.String()+"\n", "have "+h2.String()+"\n", ""), bad: true},
		"done without flush first": {in: pkt("want "+h1.String()+"\n", "done\n"), bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseUploadRequest(strings.NewReader(tc.in))
			if tc.bad {
				var re *requestError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want a *requestError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	has := func(h plumbing.Hash) bool { return h == h1 || h == h2 }
	req := func(caps string, done bool, haves ...plumbing.Hash) *uploadRequest {
		c := map[string]string{}
		if caps != "" {
			c[caps] = ""
		}
		return &uploadRequest{wants: []plumbing.Hash{h3}, caps: c, haves: haves, negotiates: true, done: done}
	}
	ack := func(h plumbing.Hash, s string) string { return strings.TrimSpace("ACK " + h.String() + " " + s) }
	tests := map[string]struct {
		req  *uploadRequest
		want []string
	}{
		"detailed round":       {req: req("multi_ack_detailed", false, h3, h1, h2), want: []string{ack(h1, "common"), ack(h2, "common"), "NAK"}},
		"detailed done":        {req: req("multi_ack_detailed", true, h1, h3), want: []string{ack(h1, "common"), ack(h1, "")}},
		"detailed none common": {req: req("multi_ack_detailed", true, h3), want: []string{"NAK"}},
		"multi_ack round":      {req: req("multi_ack", false, h1), want: []string{ack(h1, "continue"), "NAK"}},
		"single done":          {req: req("", true, h3, h2, h1), want: []string{ack(h2, "")}},
		"single round common":  {req: req("", false, h2), want: []string{ack(h2, "")}},
		"single round none":    {req: req("", false, h3), want: []string{"NAK"}},
		"clone":                {req: req("multi_ack_detailed", true), want: []string{"NAK"}},
		"duplicate haves":      {req: req("multi_ack_detailed", false, h1, h1), want: []string{ack(h1, "common"), "NAK"}},
		"deepen only":          {req: &uploadRequest{wants: []plumbing.Hash{h3}, depth: 1, caps: map[string]string{}}, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, _ := negotiate(tc.req, has)
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParseUploadRequest checks that no request makes the decoder panic, and
// that what it accepts is within its limits.
func FuzzParseUploadRequest(f *testing.F) {
	f.Add([]byte(pkt("want "+h1.String()+" multi_ack_detailed side-band-64k\n", "", "have "+h2.String()+"\n", "done\n")))
	f.Add([]byte(pkt("want "+h1.String()+" shallow\n", "shallow "+h2.String()+"\n", "deepen 3\n", "")))
	f.Add([]byte("0000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseUploadRequest(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if len(req.wants) == 0 || len(req.wants) > maxWants || len(req.haves) > maxHaves || req.depth < 0 || req.depth > maxDepth {
			t.Fatalf("accepted out of bounds: %d wants, %d haves, depth %d", len(req.wants), len(req.haves), req.depth)
		}
		negotiate(req, func(plumbing.Hash) bool { return true })
	})
}
