package access

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// keyStep is one step of a key set's story: move the clock, change what the
// endpoint serves, verify tokens, and count fetches so far.
type keyStep struct {
	name        string
	advance     time.Duration
	serve       []testKey // when set, the endpoint serves these from now on
	status      int       // when set, the endpoint answers this status from now on
	tokens      []testKey // each signs a token verified in this step
	repeat      int       // times each token is verified (default 1)
	wantOK      int       // tokens that verified
	wantFetches int64     // fetches since the start
}

func TestKeySetCaching(t *testing.T) {
	rotated := newECKey("ec-2")
	forgedSameKid := otherECKey()
	tests := []keyStep{
		{name: "first use fetches once for many verifications", tokens: []testKey{ecKey(), rsaKey()}, repeat: 100, wantOK: 200, wantFetches: 1},
		{name: "a bad signature under a known kid fetches nothing", tokens: []testKey{forgedSameKid}, repeat: 100, wantOK: 0, wantFetches: 1},
		{name: "an unknown kid soon after a fetch fetches nothing", advance: 30 * time.Second, tokens: []testKey{otherECKey().withKid("ec-9")}, repeat: 50, wantFetches: 1},
		{name: "an unknown kid a minute later fetches once", advance: 31 * time.Second, tokens: []testKey{otherECKey().withKid("ec-9")}, repeat: 50, wantFetches: 2},
		{name: "a rotated key is found by the next due refresh", advance: time.Minute, serve: []testKey{ecKey(), rotated},
			tokens: []testKey{rotated, ecKey()}, repeat: 20, wantOK: 40, wantFetches: 3},
		{name: "an hour-old set is refreshed once", advance: time.Hour, tokens: []testKey{ecKey()}, repeat: 20, wantOK: 20, wantFetches: 4},
		{name: "a failed refresh keeps the cached keys", advance: time.Hour, status: http.StatusInternalServerError,
			tokens: []testKey{ecKey(), rotated}, repeat: 20, wantOK: 40, wantFetches: 5},
		{name: "a failed refresh is retried a minute later only", advance: time.Minute, tokens: []testKey{ecKey()}, repeat: 20, wantOK: 20, wantFetches: 6},
		{name: "a removed key is refused after the refresh", advance: time.Hour, status: http.StatusOK, serve: []testKey{rotated},
			tokens: []testKey{ecKey(), rotated}, repeat: 1, wantOK: 1, wantFetches: 7},
	}
	endpoint := newJWKS(t, ecKey(), rsaKey())
	c := newClock()
	s := newKeySet(endpoint.URL, endpoint.Client(), c.Now)
	for _, st := range tests {
		t.Run(st.name, func(t *testing.T) {
			c.Advance(st.advance)
			if st.serve != nil {
				endpoint.set(st.serve...)
			}
			if st.status != 0 {
				endpoint.answer(st.status)
			}
			got := keyStepResult{OK: verifyAll(t, s, st.tokens, max(st.repeat, 1)), Fetches: endpoint.fetches.Load()}
			want := keyStepResult{OK: st.wantOK, Fetches: st.wantFetches}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

type keyStepResult struct {
	OK      int
	Fetches int64
}

// verifyAll verifies a token of each key repeat times and returns how many
// verified.
func verifyAll(t *testing.T, s *keySet, keys []testKey, repeat int) int {
	ok := 0
	for _, k := range keys {
		raw := mint(t, k, googleClaims("alice@acme.example", oidcAud, nil))
		for range repeat {
			if _, err := s.VerifySignature(context.Background(), raw); err == nil {
				ok++
			}
		}
	}
	return ok
}

func newECKey(kid string) testKey {
	k := ecKey()
	k.kid, k.priv = kid, mustEC()
	return k
}

func TestKeySetConcurrentFirstUse(t *testing.T) {
	endpoint := newJWKS(t, rsaKey())
	s := newKeySet(endpoint.URL, endpoint.Client(), newClock().Now)
	raw := mint(t, rsaKey(), googleClaims("alice@acme.example", oidcAud, nil))
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.VerifySignature(context.Background(), raw)
		})
	}
	wg.Wait()
	got := keyStepResult{OK: countNil(errs), Fetches: endpoint.fetches.Load()}
	if diff := cmp.Diff(keyStepResult{OK: 50, Fetches: 1}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func countNil(errs []error) int {
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n
}

func TestParseKeySet(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string // key ids kept
		wantErr bool
	}{
		{name: "EC and RSA", body: jwksBody(t, ecKey(), rsaKey()), want: []string{"ec-1", "rsa-1"}},
		{name: "unknown key types, algorithms and uses are ignored",
			body: `{"keys":[` + keyJSON(t, ecKey()) + `,
				{"kty":"OKP","crv":"Ed448","kid":"ed","x":"AAAA"},
				{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
				{"kty":"EC","kid":"k256","alg":"ES256K","crv":"secp256k1","x":"AAAA","y":"AAAA"},
				` + keyJSONWith(t, rsaKey().withKid("enc"), `"use":"enc"`) + `]}`,
			want: []string{"ec-1"}},
		{name: "keys without a kid are ignored", body: jwksBody(t, ecKey(), rsaKey().withKid("")), want: []string{"ec-1"}},
		{name: "no usable key", body: `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}]}`, wantErr: true},
		{name: "not JSON", body: `<html>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseKeySet([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseKeySet() error = %v, want error: %t", err, tt.wantErr)
			}
			var got []string
			for kid := range keys {
				got = append(got, kid)
			}
			if diff := cmp.Diff(tt.want, got, cmpSorted); diff != "" {
				t.Errorf("parseKeySet() key ids mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
