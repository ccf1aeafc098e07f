package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp/cmpopts"

	httpproblem "github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
)

// t0 is the time every token test takes as now.
var t0 = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)

func newClock() *fakeclock.Clock { return fakeclock.New(t0) }

// testKey is a signing key of the tests' own issuer.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// withKid returns k under another key id.
func (k testKey) withKid(kid string) testKey {
	k.kid = kid
	return k
}

var (
	ecPriv       = sync.OnceValue(func() crypto.Signer { return mustEC() })
	otherECPriv  = sync.OnceValue(func() crypto.Signer { return mustEC() })
	rsaPriv      = sync.OnceValue(func() crypto.Signer { return mustRSA() })
	otherRSAPriv = sync.OnceValue(func() crypto.Signer { return mustRSA() })
)

// The keys: ecKey and rsaKey are in the test JWKS; the others are not.
func ecKey() testKey       { return testKey{kid: "ec-1", alg: jose.ES256, priv: ecPriv()} }
func rsaKey() testKey      { return testKey{kid: "rsa-1", alg: jose.RS256, priv: rsaPriv()} }
func otherECKey() testKey  { return testKey{kid: "ec-1", alg: jose.ES256, priv: otherECPriv()} }
func otherRSAKey() testKey { return testKey{kid: "rsa-1", alg: jose.RS256, priv: otherRSAPriv()} }

func mustEC() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA() crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// mint signs claims with k, naming k's key id in the header unless kid is
// empty.
func mint(t testing.TB, k testKey, claims map[string]any) string {
	t.Helper()
	key := any(k.priv)
	if k.kid != "" {
		key = jose.JSONWebKey{Key: k.priv, KeyID: k.kid}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned returns a token with alg none carrying claims.
func unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	return segment(t, map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}) + "." + segment(t, claims) + "."
}

// hmacSigned returns a token signed with HS256 using secret: the classic
// confusion of a public key used as an HMAC secret.
func hmacSigned(t testing.TB, kid string, secret []byte, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// publicDER returns the DER form of k's public key.
func publicDER(t testing.TB, k testKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// tampered returns raw with its payload replaced by claims and its
// signature kept.
func tampered(t testing.TB, raw string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	parts[1] = segment(t, claims)
	return strings.Join(parts, ".")
}

func segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwks is a JSON Web Key Set endpoint that counts its fetches.
type jwks struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	status  int // answered instead of the keys unless 0 or 200
}

// newJWKS serves the public halves of keys until the test ends.
func newJWKS(t testing.TB, keys ...testKey) *jwks {
	j := &jwks{}
	j.set(keys...)
	j.Server = httptest.NewServer(http.HandlerFunc(j.serve))
	t.Cleanup(j.Close)
	return j
}

func (j *jwks) set(keys ...testKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = nil
	for _, k := range keys {
		j.keys = append(j.keys, k.public())
	}
}

// answer makes the endpoint answer status, serving its keys with 200.
func (j *jwks) answer(status int) {
	j.mu.Lock()
	j.status = status
	j.mu.Unlock()
}

func (j *jwks) serve(w http.ResponseWriter, _ *http.Request) {
	j.fetches.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.status != 0 && j.status != http.StatusOK {
		http.Error(w, "unavailable", j.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
}

// Audiences and accounts of the tests.
const (
	iapAud      = "/projects/123456/global/backendServices/789"
	oidcAud     = "https://bqobserver.acme.example"
	pushAud     = "https://bqobserver.acme.example/push/audit"
	pushAccount = "pubsub-push@observer.iam.gserviceaccount.com"
)

// iapClaims returns valid IAP claims for email at t0, changed by edit.
func iapClaims(email string, edit func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss":   iapIssuer,
		"aud":   iapAud,
		"sub":   "accounts.google.com:1234567890",
		"email": email,
		"iat":   t0.Add(-10 * time.Second).Unix(),
		"exp":   t0.Add(10 * time.Minute).Unix(),
	}
	if strings.HasSuffix(email, "@acme.example") { // the organization's accounts
		c["hd"] = "acme.example"
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// googleClaims returns valid Google ID token claims for email and
// audience at t0, changed by edit.
func googleClaims(email, aud string, edit func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss":            "https://accounts.google.com",
		"aud":            aud,
		"azp":            "1234567890",
		"sub":            "1234567890",
		"email":          email,
		"email_verified": true,
		"iat":            t0.Add(-10 * time.Second).Unix(),
		"exp":            t0.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// set returns an edit that sets claim k to v.
func set(k string, v any) func(map[string]any) {
	return func(c map[string]any) { c[k] = v }
}

// drop returns an edit that removes claim k.
func drop(k string) func(map[string]any) {
	return func(c map[string]any) { delete(c, k) }
}

// cmpSorted compares string slices as sets.
var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// jwksBody returns a JWKS holding the public halves of keys.
func jwksBody(t testing.TB, keys ...testKey) string {
	t.Helper()
	var parts []string
	for _, k := range keys {
		parts = append(parts, keyJSON(t, k))
	}
	return `{"keys":[` + strings.Join(parts, ",") + `]}`
}

// keyJSON returns the JWK of k's public half.
func keyJSON(t testing.TB, k testKey) string {
	t.Helper()
	pub := k.public()
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyJSONWith returns the JWK of k's public half with extra members
// replacing its own.
func keyJSONWith(t testing.TB, k testKey, extra string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(keyJSON(t, k)), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte("{"+extra+"}"), &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// problem is the problem document the middleware answers with.
type problem = httpproblem.Document
