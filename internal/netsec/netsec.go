// Package netsec holds the checks the hub and the agent make of the network addresses
// they are configured with: plain HTTP to another host (credentials and manifests in
// clear) and unauthenticated debug listeners off loopback.
package netsec

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// IsLoopback reports whether host (a name or an address, without port) is this
// machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// PlainHTTP reports whether raw is an http:// URL to a host other than this machine:
// what travels on it (tokens, manifests) can be read and changed on the way.
func PlainHTTP(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	return !IsLoopback(u.Hostname())
}

// PlainHTTPMessage is the warning (or, with --require-tls, the error) for flag's
// plain-HTTP URL (already redacted).
func PlainHTTPMessage(flag, redacted string) string {
	return fmt.Sprintf("--%s %s is plain HTTP to another host: tokens and manifests travel in clear; use https:// (--require-tls refuses plain HTTP)", flag, redacted)
}

// CheckDebugAddr refuses a listen address (host:port) for unauthenticated debug
// endpoints that is not loopback ("" host: every interface), unless allowRemote.
func CheckDebugAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if allowRemote || (host != "" && IsLoopback(host)) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address and profiles are served without authentication: bind it to 127.0.0.1 or localhost (or force it with --pprof-allow-remote)", addr)
}
