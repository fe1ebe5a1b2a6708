package chart

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"helm.sh/helm/v4/pkg/provenance"
)

// MaxProvSize is the largest provenance file (.prov) read, in bytes. Helm's are
// about 1 KiB: Chart.yaml, one checksum and a signature.
const MaxProvSize = 1 << 20

// VerifyPolicy says which remote charts must carry a valid provenance file.
type VerifyPolicy string

const (
	// VerifyIfRequired verifies the charts whose Ref.Verify is set (app.yaml's
	// helm.verify: true); the default.
	VerifyIfRequired VerifyPolicy = "if-required"
	// VerifyAlways verifies every remote chart, whatever Ref.Verify says: the
	// operator's policy, which an app cannot turn off.
	VerifyAlways VerifyPolicy = "always"
)

// ParseVerifyPolicy parses "if-required" or "always"; "" is VerifyIfRequired.
func ParseVerifyPolicy(s string) (VerifyPolicy, error) {
	switch p := VerifyPolicy(s); p {
	case "":
		return VerifyIfRequired, nil
	case VerifyIfRequired, VerifyAlways:
		return p, nil
	}
	return "", fmt.Errorf("%q is not a verification policy: want %s or %s", s, VerifyIfRequired, VerifyAlways)
}

// Keyring holds the PGP public keys a chart's provenance file must be signed by.
// It comes from the agent's configuration, never from Git.
type Keyring struct {
	file string
	ring openpgp.EntityList
}

// LoadKeyring reads a PGP keyring file: ASCII-armored keys (gpg --export --armor,
// several exports concatenated), a binary OpenPGP key stream (gpg --export, GnuPG
// 1's pubring.gpg) or a GnuPG keybox (pubring.kbx). A file that holds no key, or an
// armored block that is not a key, is an error.
func LoadKeyring(file string) (*Keyring, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var ring openpgp.EntityList
	if bytes.HasPrefix(bytes.TrimSpace(data), armorStart) {
		// Block by block: Helm's reader (armor.Decode after armor.Decode on one
		// reader, which each reads ahead) loses the blocks after the first of some
		// files, such as keys armored by go-crypto and concatenated.
		for i, block := range armoredBlocks(data) {
			keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(block))
			if err != nil {
				return nil, fmt.Errorf("keyring %s: armored block %d: %w", file, i+1, err)
			}
			ring = append(ring, keys...)
		}
	} else {
		s, err := provenance.NewFromKeyring(file, "")
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", file, err)
		}
		ring = s.KeyRing
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("keyring %s: holds no PGP key", file)
	}
	return &Keyring{file: file, ring: ring}, nil
}

var armorStart = []byte("-----BEGIN PGP ")

// armoredBlocks splits data before each armor header line.
func armoredBlocks(data []byte) [][]byte {
	var blocks [][]byte
	for {
		i := bytes.Index(data, armorStart)
		if i < 0 {
			return blocks
		}
		data = data[i:]
		next := bytes.Index(data[len(armorStart):], armorStart)
		if next < 0 {
			return append(blocks, data)
		}
		blocks = append(blocks, data[:len(armorStart)+next])
		data = data[len(armorStart)+next:]
	}
}

// Len is the number of keys (entities) in the keyring.
func (k *Keyring) Len() int { return len(k.ring) }

// VerifyReason is why a chart failed verification.
type VerifyReason string

// The reasons of a VerifyError.
const (
	// ReasonNoKeyring: verification is required but the agent has no keyring.
	ReasonNoKeyring VerifyReason = "no keyring is configured"
	// ReasonMissing: the repository or registry has no provenance file for the chart.
	ReasonMissing VerifyReason = "the provenance file is missing"
	// ReasonMalformed: the provenance file is not a PGP clearsigned Helm provenance.
	ReasonMalformed VerifyReason = "the provenance file is malformed"
	// ReasonUnknownKey: the provenance file is signed by a key not in the keyring.
	ReasonUnknownKey VerifyReason = "signed by a key that is not in the keyring"
	// ReasonBadSignature: the signature does not verify (altered text, expired or
	// revoked key).
	ReasonBadSignature VerifyReason = "the signature is not valid"
	// ReasonMismatch: the archive is not the one the provenance file vouches for.
	ReasonMismatch VerifyReason = "the archive does not match its provenance file"
)

// VerifyError is a chart that failed provenance verification. Unlike a
// *FetchError it is permanent for that chart version: retrying gets the same
// archive and signature, so it stays failed until Git or the agent's keyring
// changes. The render fails and nothing of the app is applied or pruned.
type VerifyError struct {
	// Ref is the chart.
	Ref Ref
	// Reason is why it failed.
	Reason VerifyReason
	// Err is the detail.
	Err error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify chart %s: %s: %v", e.Ref, e.Reason, e.Err)
}

// Unwrap returns the detail.
func (e *VerifyError) Unwrap() error { return e.Err }

// Verification is what a successful verification established.
type Verification struct {
	// SignedBy names the signing key: its first identity and key ID.
	SignedBy string
	// FileName is the archive's file name the provenance file names.
	FileName string
}

// Verify checks that prov, a Helm provenance file, is signed by a key of the
// keyring and gives archive's SHA-256 for the file name name. Errors are
// *VerifyError.
func (k *Keyring) Verify(ref Ref, archive, prov []byte, name string) (*Verification, error) {
	fail := func(r VerifyReason, format string, args ...any) error {
		return &VerifyError{Ref: ref, Reason: r, Err: fmt.Errorf(format, args...)}
	}
	if len(prov) > MaxProvSize {
		return nil, fail(ReasonMalformed, "%d bytes, more than the limit of %d", len(prov), MaxProvSize)
	}
	block, _ := clearsign.Decode(prov)
	if block == nil || block.ArmoredSignature == nil {
		return nil, fail(ReasonMalformed, "no PGP clearsigned message in it")
	}
	signer, err := openpgp.CheckDetachedSignature(k.ring, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return nil, fail(ReasonUnknownKey, "%w (keyring %s, %d keys)", err, k.file, len(k.ring))
	case err != nil && isParseError(err):
		return nil, fail(ReasonMalformed, "signature: %w", err)
	case err != nil:
		return nil, fail(ReasonBadSignature, "%w", err)
	}
	var sums provenance.SumCollection
	if err := provenance.ParseMessageBlock(block.Plaintext, nil, &sums); err != nil {
		return nil, fail(ReasonMalformed, "signed text: %w", err)
	}
	want, ok := sums.Files[name]
	if !ok {
		return nil, fail(ReasonMismatch, "it gives no checksum for %s", name)
	}
	sum := sha256.Sum256(archive)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want {
		return nil, fail(ReasonMismatch, "%s is %s, the provenance file says %s", name, got, want)
	}
	return &Verification{SignedBy: entityName(signer), FileName: name}, nil
}

// isParseError reports whether err says the signature could not be read, rather
// than that it does not verify.
func isParseError(err error) bool {
	var se pgperrors.StructuralError
	var ue pgperrors.UnsupportedError
	var ie pgperrors.InvalidArgumentError
	return errors.As(err, &se) || errors.As(err, &ue) || errors.As(err, &ie)
}

// entityName is an entity's first identity, in order, and its key ID.
func entityName(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return "an unnamed key"
	}
	id := e.PrimaryKey.KeyIdString()
	names := slices.Sorted(maps.Keys(e.Identities))
	if len(names) == 0 {
		return id
	}
	return names[0] + " (" + id + ")"
}
