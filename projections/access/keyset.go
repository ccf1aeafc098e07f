package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// How the key set is kept.
const (
	keysMaxAge       = time.Hour        // refresh keys this old
	keysMinInterval  = time.Minute      // never fetch more often than this
	keysFetchTimeout = 10 * time.Second // bound on one fetch
	keysMaxBytes     = 1 << 20          // bound on a key set's size
)

// keyAlgs are the signature algorithms the key set verifies; each verifier
// narrows them further.
var keyAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// keySet is a JSON Web Key Set fetched from a URL and cached. It implements
// oidc.KeySet. It fetches the set on first use, again once it is keysMaxAge
// old, and again when a token names an unknown key id, but never more than
// once per keysMinInterval whatever the tokens: a token whose signature
// does not match its key is refused without a fetch. A failed refresh keeps
// the keys it had. Concurrent callers share one fetch.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetching chan struct{} // holds a token while a goroutine may fetch

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey // by key id
	fetched   time.Time                  // last successful fetch
	attempted time.Time                  // last fetch, successful or not
	lastErr   error                      // of the last fetch
}

var _ oidc.KeySet = (*keySet)(nil)

// newKeySet returns a key set served at url, fetched with client.
func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now, fetching: make(chan struct{}, 1)}
}

// errNoKeyID is the error for a token without a key id.
var errNoKeyID = errors.New("token header has no key id (kid)")

// VerifySignature checks the signature of the compact JWS jwt with the key
// its header names and returns its payload.
func (s *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, keyAlgs)
	if err != nil {
		return nil, fmt.Errorf("parsing token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return nil, errNoKeyID
	}
	key, err := s.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("key %q is for %s, token is signed with %s", h.KeyID, key.Algorithm, h.Algorithm)
	}
	return jws.Verify(key.Key)
}

// ready makes sure the set holds keys, fetching them if it may, and returns
// an error wrapping ErrUnavailable when it holds none.
func (s *keySet) ready(ctx context.Context) error {
	if s.has() {
		return nil
	}
	if _, err := s.key(ctx, ""); errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: waiting for keys: %w", ErrUnavailable, err)
	}
	if s.has() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("%w: no keys to verify tokens (%s): %v", ErrUnavailable, s.url, s.lastErr)
}

// has reports whether the set holds any key.
func (s *keySet) has() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys) > 0
}

// key returns the key with id kid, refreshing the set first when it is old
// or lacks kid and a fetch is due.
func (s *keySet) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	if k, ok, refresh := s.lookup(kid); !refresh {
		return k, found(kid, ok)
	}
	select {
	case s.fetching <- struct{}{}:
	case <-ctx.Done():
		return jose.JSONWebKey{}, ctx.Err()
	}
	defer func() { <-s.fetching }()
	// Another caller may have fetched while this one waited.
	k, ok, refresh := s.lookup(kid)
	if refresh {
		s.refresh(ctx)
		k, ok, _ = s.lookup(kid)
	}
	return k, found(kid, ok)
}

// found returns the error for a key id that is not in the set.
func found(kid string, ok bool) error {
	if ok {
		return nil
	}
	return fmt.Errorf("no key with id %q in the key set", kid)
}

// lookup returns the key with id kid, whether there is one, and whether a
// fetch is due: the set is old or lacks kid, and the last fetch is at least
// keysMinInterval ago.
func (s *keySet) lookup(kid string) (jose.JSONWebKey, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	now := s.now()
	due := s.attempted.IsZero() || now.Sub(s.attempted) >= keysMinInterval
	old := s.fetched.IsZero() || now.Sub(s.fetched) >= keysMaxAge
	return k, ok, due && (old || !ok)
}

// refresh fetches the set and, when that succeeds, replaces the cached keys.
func (s *keySet) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keysFetchTimeout)
	defer cancel()
	keys, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempted, s.lastErr = s.now(), err
	if err == nil {
		s.keys, s.fetched = keys, s.attempted
	}
}

// fetch reads the key set from its URL.
func (s *keySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching keys: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching keys from %s: %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, keysMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching keys from %s: %w", s.url, err)
	}
	if len(body) > keysMaxBytes {
		return nil, fmt.Errorf("fetching keys from %s: key set larger than %d bytes", s.url, keysMaxBytes)
	}
	return parseKeySet(body)
}

// parseKeySet returns the usable signature keys of a JSON Web Key Set by
// key id. As RFC 7517 §5 asks, keys of unknown types or algorithms, keys
// for another use and malformed keys are ignored; keys without an id are
// ignored too, since tokens must name their key. A set with no usable key
// is an error.
func parseKeySet(body []byte) (map[string]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if k = k.Public(); !usable(k) {
			continue
		}
		if _, dup := keys[k.KeyID]; !dup {
			keys[k.KeyID] = k
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("decoding key set: no usable signature key")
	}
	return keys, nil
}

// usable reports whether the public key k can verify this package's tokens.
func usable(k jose.JSONWebKey) bool {
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return false
	}
	return k.KeyID != "" && k.Valid() && (k.Use == "" || k.Use == "sig") &&
		(k.Algorithm == "" || slices.Contains(keyAlgs, jose.SignatureAlgorithm(k.Algorithm)))
}
