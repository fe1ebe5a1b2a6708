//go:build unix

package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// browser is a headless Chromium driven through the DevTools protocol (CDP) over a
// WebSocket: just enough of it to evaluate JavaScript in a page and navigate.
type browser struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID int
}

// startBrowser starts Chromium on url with remote debugging and attaches to its page.
// Chromium and its children are killed when the test ends.
func startBrowser(t *testing.T, chromium, url string) *browser {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--mute-audio", "--window-size=1400,900",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=*", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})

	// Chromium writes its DevTools port to DevToolsActivePort in the profile.
	var port string
	deadline := time.Now().Add(time.Minute)
	for port == "" {
		if time.Now().After(deadline) {
			t.Fatalf("chromium did not open its DevTools port within a minute\nstderr:\n%s", stderr.String())
		}
		if f, err := os.Open(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			sc := bufio.NewScanner(f)
			if sc.Scan() {
				port = strings.TrimSpace(sc.Text())
			}
			_ = f.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}

	var wsURL string
	for wsURL == "" {
		if time.Now().After(deadline) {
			t.Fatalf("chromium shows no page target\nstderr:\n%s", stderr.String())
		}
		var targets []struct{ Type, URL, WebSocketDebuggerURL string }
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			_ = resp.Body.Close()
		}
		for _, tg := range targets {
			if err == nil && tg.Type == "page" {
				wsURL = tg.WebSocketDebuggerURL
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ws, err := websocket.Dial(wsURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("attach to chromium's page: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &browser{t: t, ws: ws}
}

// call sends a CDP command and returns its result, skipping the events in between.
func (b *browser) call(method string, params any) json.RawMessage {
	b.t.Helper()
	b.nextID++
	id := b.nextID
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		b.t.Fatalf("CDP %s: %v", method, err)
	}
	_ = b.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			b.t.Fatalf("CDP %s: %v", method, err)
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			b.t.Fatalf("CDP %s: %s", method, msg.Error.Message)
		}
		return msg.Result
	}
}

// eval evaluates a JavaScript expression in the page and returns its value as a
// string ("" for null or undefined, or when the page is between documents).
func (b *browser) eval(expr string) string {
	b.t.Helper()
	res := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	var out struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		b.t.Fatalf("decode Runtime.evaluate result: %v", err)
	}
	if out.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(out.Result.Value)
}

// waitFor evaluates expr until it returns want, or fails the test after d.
func (b *browser) waitFor(what, expr, want string, d time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got := ""
	for ctx.Err() == nil {
		if got = b.eval(expr); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("%s: %s = %q after %s, want %q", what, expr, got, d, want)
}

// navigate loads url in the page.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.call("Page.navigate", map[string]any{"url": url})
}
