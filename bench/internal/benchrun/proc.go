package benchrun

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStatus reads /proc/<pid>/status's kB fields (VmRSS, VmHWM, RssAnon, ...).
func procStatus(pid int) (map[string]float64, error) {
	return procKB(fmt.Sprintf("/proc/%d/status", pid))
}

// smapsRollup reads /proc/<pid>/smaps_rollup's kB fields (Rss, Anonymous, ...).
func smapsRollup(pid int) (map[string]float64, error) {
	return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
}

// procKB parses "Name:   123 kB" lines.
func procKB(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[2] == "kB" {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[strings.TrimSuffix(f[0], ":")] = v
			}
		}
	}
	return out, nil
}

// procCPU is a process's CPU time so far (user + system).
func procCPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// procRSSMB is a process's resident set in MB (MiB), 0 when it cannot be read.
func procRSSMB(pid int) float64 {
	st, err := procStatus(pid)
	if err != nil {
		return 0
	}
	return st["VmRSS"] / 1024
}
