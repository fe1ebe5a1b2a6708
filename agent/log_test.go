package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// syncBuffer is a bytes.Buffer safe for the agent's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runAgentLogging runs a standalone agent on repo until stop is called, logging JSON at
// level into the returned buffer.
func runAgentLogging(t *testing.T, repoURL, invNS string, level slog.Level, mutate func(*Config)) (*syncBuffer, func()) {
	t.Helper()
	buf := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.ClusterName = "dev"
	cfg.GitURL = repoURL
	cfg.CacheDir = t.TempDir()
	cfg.ListenAddr = ""
	cfg.LeaderElect = false
	cfg.Interval = time.Hour
	cfg.GitPollInterval = time.Hour
	cfg.InventoryNamespace = invNS
	cfg.RESTConfig = env.RESTConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent exited with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("agent did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return buf, stop
}

// duplicateKey returns the first key that appears twice in one object of a JSON
// value (at any depth), or "".
func duplicateKey(line string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func() (string, error)
	walk = func() (string, error) {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return "", err
				}
				key := k.(string)
				if seen[key] {
					return key, nil
				}
				seen[key] = true
				if dup, err := walk(); dup != "" || err != nil {
					return dup, err
				}
			}
			_, err = dec.Token()
			return "", err
		case json.Delim('['):
			for dec.More() {
				if dup, err := walk(); dup != "" || err != nil {
					return dup, err
				}
			}
			_, err = dec.Token()
			return "", err
		}
		return "", nil
	}
	return walk()
}

func TestDuplicateKey(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"b":2}`:                    "",
		`{"cluster":"x","cluster":"x"}`:    "cluster",
		`{"a":{"b":1,"b":2}}`:              "b",
		`{"a":[{"c":1},{"c":1,"c":2}]}`:    "c",
		`{"a":{"b":1},"b":{"a":[1,2,3]}}`:  "",
		`{"msg":"m","a":"x","z":1,"a":""}`: "a",
	} {
		if got, err := duplicateKey(in); got != want || err != nil {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// checkLogLines fails on a log line that is not JSON or repeats a key, and returns
// the lines.
func checkLogLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		dup, err := duplicateKey(sc.Text())
		if err != nil && err != io.EOF {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if dup != "" {
			t.Errorf("log line repeats %q: %s", dup, sc.Text())
		}
		var m map[string]any
		_ = json.Unmarshal(sc.Bytes(), &m)
		lines = append(lines, m)
	}
	return lines
}

// Every line the agent logs while it syncs carries the cluster attribute exactly once.
func TestAgentLogLinesCarryClusterOnce(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	buf, stop := runAgentLogging(t, repo.url(), ns, slog.LevelDebug, nil)
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), `"msg":"app synced"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	lines := checkLogLines(t, buf.String())
	synced := 0
	for _, l := range lines {
		if l["msg"] == "app synced" {
			synced++
			if l["cluster"] != "dev" {
				t.Errorf("app synced line has cluster %v, want dev: %v", l["cluster"], l)
			}
		}
		if _, ok := l["cluster"]; !ok {
			t.Errorf("line without cluster: %v", l)
		}
	}
	if synced == 0 {
		t.Errorf("no \"app synced\" line in %d lines:\n%s", len(lines), buf.String())
	}
	t.Logf("%d lines checked", len(lines))
}
