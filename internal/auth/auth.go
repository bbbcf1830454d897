// Package auth holds Inlet's API keys: a bearer key maps to exactly one
// organization, and every HTTP request acts for that organization only.
//
// Keys come from a JSON file (INLET_API_KEYS_FILE) and/or the environment
// (INLET_API_KEYS). Only their SHA-256 is kept in memory; a file may hold the
// hash instead of the secret (key_sha256) so secrets need not be stored in
// clear. A presented key is hashed and compared with every configured hash in
// constant time.
//
// The embedded default may run with keys off (Disabled): then no request is
// checked and the organization is the one the request names, as before keys
// existed.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/inlet-dev/inlet/events"
)

// Environment variables of the keys.
const (
	EnvFile = "INLET_API_KEYS_FILE" // path of a JSON array of keys
	EnvKeys = "INLET_API_KEYS"      // "id:org:secret,id2:org2:secret2"
)

// MinSecretLen is the shortest secret accepted in clear: a key is a bearer
// credential, so a guessable one is a configuration error.
const MinSecretLen = 16

// Key is one API key: its id (recorded as created_by), the one organization
// it acts for, and the SHA-256 of its secret.
type Key struct {
	ID, Org string
	hash    [32]byte
}

// NewKey makes a key from its secret in clear.
func NewKey(id, org, secret string) (Key, error) {
	k := Key{ID: id, Org: org, hash: sha256.Sum256([]byte(secret))}
	if err := k.validate(); err != nil {
		return Key{}, err
	}
	if err := checkSecret(id, secret); err != nil {
		return Key{}, err
	}
	return k, nil
}

// NewKeyHash makes a key from the hex SHA-256 of its secret (64 hex digits,
// optionally prefixed "sha256:").
func NewKeyHash(id, org, sha256Hex string) (Key, error) {
	k := Key{ID: id, Org: org}
	if err := k.validate(); err != nil {
		return Key{}, err
	}
	h := strings.TrimPrefix(strings.TrimSpace(sha256Hex), "sha256:")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return Key{}, fmt.Errorf("key %q: key_sha256 must be the 64 hex digits of the secret's SHA-256 (e.g. printf %%s \"$SECRET\" | sha256sum)", id)
	}
	copy(k.hash[:], b)
	return k, nil
}

// HashHex is the hex SHA-256 of secret: what key_sha256 holds.
func HashHex(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func (k Key) validate() error {
	if !events.ValidToken(k.ID) {
		return fmt.Errorf("key id %q: must match [A-Za-z0-9_-]{1,64}", k.ID)
	}
	if !events.ValidToken(k.Org) {
		return fmt.Errorf("key %q: organization_id %q must match [A-Za-z0-9_-]{1,64}", k.ID, k.Org)
	}
	return nil
}

func checkSecret(id, secret string) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("key %q: the secret must be at least %d characters", id, MinSecretLen)
	}
	if strings.TrimSpace(secret) != secret || strings.ContainsAny(secret, " \t\r\n,") {
		return fmt.Errorf("key %q: the secret may not contain spaces, commas or line breaks", id)
	}
	return nil
}

// Keyring is the configured keys, or the disabled mode of the embedded
// default. The zero value and nil are disabled.
type Keyring struct {
	keys []Key
}

// Disabled is the keyring of the embedded default without keys: no request
// is checked.
func Disabled() *Keyring { return &Keyring{} }

// NewKeyring checks keys (valid ids and organizations, no id or secret twice)
// and returns them as a keyring. No keys is the disabled keyring.
func NewKeyring(keys ...Key) (*Keyring, error) {
	ids := map[string]bool{}
	hashes := map[[32]byte]string{}
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, err
		}
		if ids[k.ID] {
			return nil, fmt.Errorf("key id %q is configured twice: ids must be unique", k.ID)
		}
		ids[k.ID] = true
		if other, dup := hashes[k.hash]; dup {
			return nil, fmt.Errorf("keys %q and %q have the same secret: each key needs its own", other, k.ID)
		}
		hashes[k.hash] = k.ID
	}
	return &Keyring{keys: append([]Key(nil), keys...)}, nil
}

// Enabled reports whether requests must carry a key.
func (kr *Keyring) Enabled() bool { return kr != nil && len(kr.keys) > 0 }

// Len is the number of keys.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// Orgs lists the organizations that have a key, once each, in key order
// (for the start-up log).
func (kr *Keyring) Orgs() []string {
	var out []string
	seen := map[string]bool{}
	if kr == nil {
		return nil
	}
	for _, k := range kr.keys {
		if !seen[k.Org] {
			seen[k.Org] = true
			out = append(out, k.Org)
		}
	}
	return out
}

// Authenticate finds the key whose secret is secret. It hashes the secret
// and compares the hash with every key's in constant time, without stopping
// at a match, so the time taken says nothing about which key (if any)
// matched.
func (kr *Keyring) Authenticate(secret string) (Key, bool) {
	if kr == nil || secret == "" {
		return Key{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	found := -1
	for i := range kr.keys {
		if subtle.ConstantTimeCompare(sum[:], kr.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return kr.keys[found], true
}

// fileKey is one element of the keys file.
type fileKey struct {
	ID        string  `json:"id"`
	Org       string  `json:"organization_id"`
	Key       *string `json:"key"`
	KeySHA256 *string `json:"key_sha256"`
}

// ParseFile reads the keys file's JSON: an array of
// {"id","organization_id","key"} or {"id","organization_id","key_sha256"}.
// name labels errors.
func ParseFile(name string, data []byte) ([]Key, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var list []fileKey
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of {\"id\", \"organization_id\", \"key\" or \"key_sha256\"}: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more than one JSON value", name)
	}
	keys := make([]Key, 0, len(list))
	for i, fk := range list {
		var k Key
		var err error
		switch {
		case fk.Key != nil && fk.KeySHA256 != nil:
			err = fmt.Errorf("key %q: give key or key_sha256, not both", fk.ID)
		case fk.Key != nil:
			k, err = NewKey(fk.ID, fk.Org, *fk.Key)
		case fk.KeySHA256 != nil:
			k, err = NewKeyHash(fk.ID, fk.Org, *fk.KeySHA256)
		default:
			err = fmt.Errorf("key %q: needs key (the secret) or key_sha256 (its SHA-256 in hex)", fk.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", name, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ParseEnv reads INLET_API_KEYS's form: "id:org:secret" entries separated by
// commas (the secret may hold colons, not commas). Blank entries are skipped.
func ParseEnv(v string) ([]Key, error) {
	var keys []Key
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			// Never echo the entry: it may be a secret.
			return nil, fmt.Errorf("%s: entry %d: want id:organization_id:secret", EnvKeys, i+1)
		}
		k, err := NewKey(parts[0], parts[1], parts[2])
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", EnvKeys, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Load builds the keyring from a keys file (path; "" for none) and an
// INLET_API_KEYS value (env; "" for none). Keys of both are merged and
// checked together (an id or secret in both is an error). No keys at all is
// the disabled keyring: the caller decides whether that may run.
func Load(path, env string) (*Keyring, error) {
	var keys []Key
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvFile, err)
		}
		fk, err := ParseFile(path, data)
		if err != nil {
			return nil, err
		}
		if len(fk) == 0 {
			return nil, fmt.Errorf("%s: %s holds no keys", EnvFile, path)
		}
		keys = append(keys, fk...)
	}
	ek, err := ParseEnv(env)
	if err != nil {
		return nil, err
	}
	keys = append(keys, ek...)
	kr, err := NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	return kr, nil
}

// LoadEnv is Load from INLET_API_KEYS_FILE and INLET_API_KEYS.
func LoadEnv() (*Keyring, error) {
	return Load(os.Getenv(EnvFile), os.Getenv(EnvKeys))
}

// ErrNoKeys is returned by Require for a keyring without keys.
var ErrNoKeys = errors.New("no API keys configured: set " + EnvFile + " or " + EnvKeys +
	" (only the embedded default may run with API keys off)")

// Require is nil for a keyring with keys and ErrNoKeys otherwise: a process
// that is not the embedded default calls it before serving.
func (kr *Keyring) Require() error {
	if !kr.Enabled() {
		return ErrNoKeys
	}
	return nil
}
