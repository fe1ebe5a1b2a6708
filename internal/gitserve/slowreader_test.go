package gitserve_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gitops/outpost/internal/gitserve"
)

// pktLines encodes pkt-lines; "" is a flush packet.
func pktLines(lines ...string) string {
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

// slowFetch sends an upload-pack request for head over a raw connection and returns
// it unread: the client then reads as slowly as the test wants.
func slowFetch(t *testing.T, base, head string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A small receive window: the pack cannot hide in the client's socket buffer.
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	body := pktLines("want "+head+" side-band-64k ofs-delta\n", "", "done\n")
	req, _ := http.NewRequest("POST", base+"/git-upload-pack", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.SetBasicAuth("cluster", token)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestAttackSlowReadersCannotStallFetches: more slow readers than pack slots (each
// taking one byte now and then of a pack too big for the socket buffers) do not stop a
// normal fetch, since a slot is held only while an answer is built; and a reader that
// stops reading is cut after the idle write timeout (security review M7).
func TestAttackSlowReadersCannotStallFetches(t *testing.T) {
	repo, base := serve(t, func(c *gitserve.Config) {
		c.MaxConcurrentPacks = 2
		c.IdleWriteTimeout = time.Second
	})
	big := make([]byte, 8<<20) // random: does not compress, more than loopback buffers hold
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	head := repo.Commit(t, map[string]string{"blob.txt": hex.EncodeToString(big)}, "big", "T <t@example.com>")

	var slow []net.Conn
	for range 3 {
		slow = append(slow, slowFetch(t, base, head))
	}
	// A normal fetch completes while the slow readers hold their connections.
	done := make(chan error, 1)
	go func() {
		r := clone(t, base, 1)
		_, err := r.Head()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("normal fetch: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a normal fetch did not complete while slow readers held their connections")
	}
	// The slow readers never read: the hub stops sending to them after the idle
	// timeout, so reading now gets what was in flight and not the whole pack (without
	// the timeout the server would go on sending as the client reads).
	for i, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		if n >= int64(len(big)) {
			t.Errorf("slow reader %d got %d bytes, the whole pack: it was not cut", i, n)
		}
	}
}
