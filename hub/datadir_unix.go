//go:build unix

package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the file in DataDir that a running hub holds locked.
const LockFile = "hub.lock"

// lockDataDir takes an exclusive lock on DataDir's LockFile, so that a second hub
// process on the same directory (one SQLite database, one embedded repository) is
// refused instead of corrupting them; the kernel releases it when the process ends.
// The returned function releases it.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hub runs on data directory %s (it holds %s): run one hub per data directory", dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}
