package gitserve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
)

// TokenKey is a Config.Key: the request's credential (basic-auth password or bearer
// token), hashed, so the limit applies per token without keeping tokens in memory.
func TokenKey(r *http.Request) string {
	tok, _ := Token(r)
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

// spillBuffer holds an upload-pack answer: in memory up to maxBufferedAnswer, in a
// temporary file beyond, so that a big pack costs disk, not memory.
type spillBuffer struct {
	mem  bytes.Buffer
	file *os.File
	size int64
}

func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.file == nil && b.mem.Len()+len(p) > maxBufferedAnswer {
		f, err := os.CreateTemp("", "outpost-pack-*")
		if err != nil {
			return 0, err
		}
		b.file = f
		if _, err := f.Write(b.mem.Bytes()); err != nil {
			return 0, err
		}
		b.mem = bytes.Buffer{}
	}
	var n int
	var err error
	if b.file != nil {
		n, err = b.file.Write(p)
	} else {
		n, err = b.mem.Write(p)
	}
	b.size += int64(n)
	return n, err
}

// Reader returns the answer from its start.
func (b *spillBuffer) Reader() (io.Reader, error) {
	if b.file == nil {
		return &b.mem, nil
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return b.file, nil
}

// Close removes the temporary file, if any.
func (b *spillBuffer) Close() {
	if b.file != nil {
		name := b.file.Name()
		_ = b.file.Close()
		_ = os.Remove(name)
	}
}
