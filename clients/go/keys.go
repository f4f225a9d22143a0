package licensing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Keys are a tenant's Ed25519 public keys by key id ("v1", "v2", ...).
//
// The vendor copies them from GET /v1/public/tenants/{tenant_id}/signing-keys into the app at
// build time (ParseKeys). Keys are never fetched at run time: a key the app does not ship cannot
// vouch for an answer or a license file. Keep every listed key pinned, retired ones included, and
// keep "v1" for good: refusals made before the tenant was resolved are always signed with v1.
type Keys map[string]ed25519.PublicKey

// ParseKeys reads keys given as the signing-keys listing shows them: kid → standard base64 of the
// 32 raw bytes (with or without padding). A key that is not base64, not 32 bytes, or not a point
// of the curve is an error.
func ParseKeys(encoded map[string]string) (Keys, error) {
	keys := make(Keys, len(encoded))
	for kid, text := range encoded {
		key, err := ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("licensing: public key %q: %w", kid, err)
		}
		if kid == "" {
			return nil, fmt.Errorf("licensing: a public key with an empty key id")
		}
		keys[kid] = key
	}
	return keys, nil
}

// MustParseKeys is ParseKeys for keys compiled into the app; it panics on a bad key.
func MustParseKeys(encoded map[string]string) Keys {
	keys, err := ParseKeys(encoded)
	if err != nil {
		panic(err)
	}
	return keys
}

// ParseKey reads one public key: standard base64 of 32 bytes, with or without padding.
func ParseKey(text string) (ed25519.PublicKey, error) {
	text = strings.TrimSpace(text)
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		raw, err = base64.RawStdEncoding.Strict().DecodeString(text)
	}
	if err != nil {
		return nil, fmt.Errorf("not base64")
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a 32-byte Ed25519 public key (%d bytes)", len(raw))
	}
	if _, ok := decodePoint(raw); !ok {
		return nil, fmt.Errorf("not a point of the curve")
	}
	return ed25519.PublicKey(raw), nil
}

// IDs are the pinned key ids, sorted.
func (k Keys) IDs() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// verified is the outcome of Keys.verify.
type verified int

const (
	verifiedYes verified = iota
	verifiedNo
	verifiedUnknownKey
)

// verify checks signature over message with the key pinned under kid, strictly: besides
// crypto/ed25519's checks (a canonical S), the key and the signature's R must not be points of
// small order. This is what ed25519-dalek's verify_strict (the Rust client's) accepts, so that
// every client library judges every signature alike.
func (k Keys) verify(kid string, message, signature []byte) verified {
	key, ok := k[kid]
	if !ok {
		return verifiedUnknownKey
	}
	if len(key) != ed25519.PublicKeySize || len(signature) != ed25519.SignatureSize {
		return verifiedNo
	}
	if weak(key) || weak(signature[:32]) {
		return verifiedNo
	}
	if !ed25519.Verify(key, message, signature) {
		return verifiedNo
	}
	return verifiedYes
}

// The curve: -x² + y² = 1 + d·x²·y² over GF(p), p = 2²⁵⁵ - 19, d = -121665/121666.
var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	curveD = func() *big.Int {
		inv := new(big.Int).ModInverse(big.NewInt(121666), fieldP)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, fieldP)
	}()
)

type point struct{ x, y *big.Int }

// decodePoint decompresses a 32-byte encoding (y little-endian, the top bit x's sign) the way
// ed25519-dalek does: y is taken modulo p; false when no x exists.
func decodePoint(b []byte) (point, bool) {
	if len(b) != 32 {
		return point{}, false
	}
	sign := b[31] >> 7
	y := leInt(b)
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))                 // y² - 1
	v := new(big.Int).Add(new(big.Int).Mul(curveD, y2), one) // d·y² + 1
	u.Mod(u, fieldP)
	v.Mod(v, fieldP)
	w := new(big.Int).Mul(u, new(big.Int).ModInverse(v, fieldP))
	w.Mod(w, fieldP)
	x := new(big.Int).ModSqrt(w, fieldP)
	if x == nil {
		return point{}, false
	}
	if x.Bit(0) != uint(sign) {
		x.Sub(fieldP, x).Mod(x, fieldP)
	}
	return point{x, y}, true
}

var one = big.NewInt(1)

// leInt reads 32 little-endian bytes, the top bit (x's sign) cleared, modulo p.
func leInt(b []byte) *big.Int {
	be := make([]byte, 32)
	for i := range b {
		be[31-i] = b[i]
	}
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be)
	return y.Mod(y, fieldP)
}

// The y coordinates of the eight points of order dividing 8: the identity (y = 1), the point of
// order 2 (y = -1), the two of order 4 (y = 0) and the four of order 8 (y = ±y8). Every y of
// them has its x on the curve, with either sign.
var smallOrderY = func() []*big.Int {
	y8, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	y := leInt(y8)
	return []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(fieldP, one), y, new(big.Int).Sub(fieldP, y)}
}()

// weak reports whether an encoded point is of small order (8·P is the identity), in any of its
// encodings (y taken modulo p, either sign bit), which a strict verifier refuses as a key or as
// a signature's R. (An encoding that is no point at all fails crypto/ed25519's own checks.)
func weak(encoded []byte) bool {
	if len(encoded) != 32 {
		return true
	}
	y := leInt(encoded)
	for _, small := range smallOrderY {
		if y.Cmp(small) == 0 {
			return true
		}
	}
	return false
}
