package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves line echo on a loopback port.
func echo(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return lis.Addr().String()
}

// roundTrip sends a line on c and reads it back within timeout.
func roundTrip(c net.Conn, r *bufio.Reader, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("echoed " + line)
	}
	return time.Since(start), err
}

func TestTCPModes(t *testing.T) {
	p, err := NewTCP(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	c, r := dial()
	if _, err := roundTrip(c, r, 2*time.Second); err != nil {
		t.Fatalf("pass: %v", err)
	}

	p.SetDelay(300 * time.Millisecond)
	p.SetMode(Delay)
	if took, err := roundTrip(c, r, 5*time.Second); err != nil || took < 600*time.Millisecond {
		t.Fatalf("delay: %v after %s, want the echo after two delays of 300ms", err, took)
	}

	p.SetMode(HalfOpen)
	if _, err := roundTrip(c, r, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("half-open: %v, want a timeout", err)
	}
	p.SetMode(Pass) // the held chunk goes through once healed
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("after half-open healed: %q, %v", line, err)
	}

	p.SetMode(Reset)
	if _, err := roundTrip(c, r, 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reset: %v, want the connection reset", err)
	}

	p.SetMode(Drop)
	c2, r2 := dial()
	if _, err := roundTrip(c2, r2, 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("drop: %v, want the connection closed", err)
	}

	p.SetMode(Pass)
	c3, r3 := dial()
	if _, err := roundTrip(c3, r3, 2*time.Second); err != nil {
		t.Fatalf("pass after drop: %v", err)
	}
	if s := p.String(); s == "" {
		t.Error("no description")
	}
}
