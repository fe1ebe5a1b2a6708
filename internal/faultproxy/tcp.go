package faultproxy

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what a TCP proxy does to connections.
type Mode int

const (
	// Pass forwards both ways.
	Pass Mode = iota
	// Drop refuses new connections (accepted and closed at once) and closes the
	// open ones: a partition the client notices.
	Drop
	// Delay forwards after holding each chunk for the proxy's delay.
	Delay
	// HalfOpen accepts and reads, but forwards nothing and never answers: a
	// partition the client notices only by its timeouts.
	HalfOpen
	// Reset resets every open connection (TCP RST) once it carries data, and new
	// ones after their first chunk: a reset in the middle of a stream.
	Reset
)

func (m Mode) String() string {
	return [...]string{"pass", "drop", "delay", "half-open", "reset"}[m]
}

// TCP forwards connections from a loopback port to a target address, with a Mode
// that can change at any time; a change applies to open connections too.
type TCP struct {
	target string
	lis    net.Listener

	mu    sync.Mutex
	mode  Mode
	delay time.Duration
	conns map[*pipe]struct{}
	wake  chan struct{} // closed and replaced on every change of mode
}

// pipe is one proxied connection.
type pipe struct{ client, server *net.TCPConn }

// NewTCP starts a proxy to target ("host:port") on a loopback port, in mode Pass.
func NewTCP(target string) (*TCP, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCP{target: target, lis: lis, delay: 2 * time.Second, conns: map[*pipe]struct{}{}, wake: make(chan struct{})}
	go p.accept()
	return p, nil
}

// Addr is the proxy's address ("127.0.0.1:port").
func (p *TCP) Addr() string { return p.lis.Addr().String() }

// SetMode changes what the proxy does; Drop closes the open connections at once.
func (p *TCP) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	close(p.wake)
	p.wake = make(chan struct{})
	var drop []*pipe
	if m == Drop {
		for c := range p.conns {
			drop = append(drop, c)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.close(false)
	}
}

// SetDelay sets the delay of mode Delay (default 2 s).
func (p *TCP) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

func (p *TCP) state() (Mode, time.Duration, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.wake
}

// Close stops accepting and closes every connection.
func (p *TCP) Close() error {
	err := p.lis.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = map[*pipe]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.close(false)
	}
	return err
}

func (p *TCP) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *TCP) serve(client *net.TCPConn) {
	if mode, _, _ := p.state(); mode == Drop {
		client.Close()
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	c := &pipe{client: client, server: s.(*net.TCPConn)}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { p.copy(c, c.server, c.client); done <- struct{}{} }()
	go func() { p.copy(c, c.client, c.server); done <- struct{}{} }()
	<-done
	c.close(false)
	<-done
}

// copy forwards src to dst chunk by chunk, applying the mode to each chunk.
func (p *TCP) copy(c *pipe, dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(c, dst, buf[:n]) {
			return
		}
		if err != nil {
			if err == io.EOF {
				_ = dst.CloseWrite()
			}
			return
		}
	}
}

// forward writes one chunk as the mode says; false ends the connection.
func (p *TCP) forward(c *pipe, dst *net.TCPConn, chunk []byte) bool {
	for {
		mode, delay, wake := p.state()
		switch mode {
		case Drop:
			return false
		case Reset:
			c.close(true)
			return false
		case HalfOpen:
			<-wake // hold until the mode changes
			continue
		case Delay:
			select {
			case <-time.After(delay):
			case <-wake:
				continue
			}
		}
		_, err := dst.Write(chunk)
		return err == nil
	}
}

// close closes both sides; reset sends a TCP RST instead of a FIN.
func (c *pipe) close(reset bool) {
	if reset {
		_ = c.client.SetLinger(0)
		_ = c.server.SetLinger(0)
	}
	_ = c.client.Close()
	_ = c.server.Close()
}

// String describes the proxy for logs.
func (p *TCP) String() string {
	mode, delay, _ := p.state()
	if mode == Delay {
		return fmt.Sprintf("%s → %s (%s %s)", p.Addr(), p.target, mode, delay)
	}
	return fmt.Sprintf("%s → %s (%s)", p.Addr(), p.target, mode)
}
