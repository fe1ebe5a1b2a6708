package netsec

import (
	"strings"
	"testing"
)

func TestPlainHTTP(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://hub.example.com":         true,
		"http://10.0.0.5:8080/git/x.git": true,
		"HTTP://hub.example.com":         true,
		"https://hub.example.com":        false,
		"http://127.0.0.1:8080":          false,
		"http://127.9.9.9":               false,
		"http://localhost:8080":          false,
		"http://[::1]:8080":              false,
		"ssh://git@example.com/x":        false,
		"git@example.com:x":              false,
		"file:///srv/x":                  false,
	} {
		if got := PlainHTTP(raw); got != want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestCheckDebugAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:6060": "",
		"localhost:6060": "",
		"[::1]:6060":     "",
		":6060":          "not a loopback address",
		"0.0.0.0:6060":   "not a loopback address",
		"10.1.2.3:6060":  "not a loopback address",
		"nonsense":       "missing port",
	} {
		err := CheckDebugAddr(addr, false)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckDebugAddr(%q) = %v, want %q", addr, err, want)
		}
	}
	if err := CheckDebugAddr(":6060", true); err != nil {
		t.Errorf("forced: %v", err)
	}
}
