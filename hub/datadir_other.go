//go:build !unix

package hub

// LockFile is the file in DataDir that a running hub holds locked (on Unix).
const LockFile = "hub.lock"

// lockDataDir does nothing where flock is not available.
func lockDataDir(string) (func(), error) { return func() {}, nil }
