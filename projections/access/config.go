package access

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Mode is how users are identified.
type Mode string

// The authentication modes.
const (
	// ModeNone identifies nobody: every request is the admin "anonymous".
	ModeNone Mode = "none"
	// ModeIAP reads the Identity-Aware Proxy assertion of every request.
	ModeIAP Mode = "iap"
	// ModeOIDC reads a Google-signed ID token sent as Authorization: Bearer.
	ModeOIDC Mode = "oidc"
)

// Google's token issuers and the key sets that verify them.
const (
	iapIssuer     = "https://cloud.google.com/iap"
	iapKeysURL    = "https://www.gstatic.com/iap/verify/public_key-jwk"
	googleIssuer  = "https://accounts.google.com"
	googleKeysURL = "https://www.googleapis.com/oauth2/v3/certs"
)

// ClockSkew is how far the service's clock and the token issuer's may
// disagree: a token is accepted until ClockSkew after its expiry and from
// ClockSkew before its issue and not-before times.
const ClockSkew = time.Minute

// Config configures an Authenticator. The suggested flag of each field is
// in brackets; error messages name the flags by these names.
type Config struct {
	// Mode is how users are identified [--auth]. Default ModeNone.
	Mode Mode
	// IAPAudience is the audience of IAP assertions [--iap-audience]:
	// /projects/NUMBER/global/backendServices/ID behind a load balancer,
	// /projects/NUMBER/apps/PROJECT_ID on App Engine. Required with ModeIAP.
	IAPAudience string
	// OIDCAudience is the audience of ID tokens [--oidc-audience]: what
	// clients pass as the token's audience, usually the service's URL.
	// Required with ModeOIDC.
	OIDCAudience string
	// OIDCIssuer is the issuer of ID tokens [--oidc-issuer], for issuers
	// other than Google together with JWKSURL. Default
	// https://accounts.google.com (accounts.google.com is accepted too).
	OIDCIssuer string
	// JWKSURL overrides where the keys that verify tokens come from
	// [--auth-jwks-url]: a JSON Web Key Set that may hold EC and RSA keys.
	// Default IAP's keys with ModeIAP, Google's with ModeOIDC.
	JWKSURL string
	// Policy maps callers to roles [--policy FILE, read with LoadPolicy].
	// Required with ModeIAP and ModeOIDC; refused with ModeNone, where it
	// would have no effect.
	Policy *Policy
	// ListenAddr is the address the service listens on [--http-addr]. With
	// ModeNone it must be a loopback address (see IsLoopbackAddr).
	ListenAddr string
	// AllowUnauthenticated lets ModeNone listen on a non-loopback address
	// [--allow-unauthenticated]: everyone who can reach it is an admin.
	AllowUnauthenticated bool
	// OnReject, when set, is called for every refused request with the
	// status answered and the reason, to count or log refusals.
	OnReject func(r *http.Request, status int, err error)
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeNone
	}
	if c.OIDCIssuer == "" {
		c.OIDCIssuer = googleIssuer
	}
	if c.JWKSURL == "" {
		switch c.Mode {
		case ModeIAP:
			c.JWKSURL = iapKeysURL
		case ModeOIDC:
			c.JWKSURL = googleKeysURL
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	switch c.Mode {
	case ModeNone:
		errs = append(errs, c.validateNone()...)
	case ModeIAP:
		errs = append(errs, c.validateTokens("--iap-audience", c.IAPAudience)...)
	case ModeOIDC:
		errs = append(errs, c.validateTokens("--oidc-audience", c.OIDCAudience)...)
		if c.OIDCIssuer != googleIssuer && c.JWKSURL == googleKeysURL {
			errs = append(errs, fmt.Errorf("--oidc-issuer=%s needs --auth-jwks-url: Google's keys do not sign its tokens", c.OIDCIssuer))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth=%s: unknown mode (want none, iap or oidc)", c.Mode))
	}
	return errors.Join(errs...)
}

// validateNone checks ModeNone: loopback only, and no policy.
func (c Config) validateNone() []error {
	var errs []error
	if !c.AllowUnauthenticated && !IsLoopbackAddr(c.ListenAddr) {
		errs = append(errs, fmt.Errorf("--auth=none on --http-addr=%s would show every job and query of the organization to anyone who can reach it: "+
			"set --auth=iap or --auth=oidc with --policy, listen on a loopback address such as --http-addr=127.0.0.1:8080, "+
			"or pass --allow-unauthenticated if the network in front is trusted", c.ListenAddr))
	}
	if c.Policy != nil {
		errs = append(errs, errors.New("--policy has no effect with --auth=none, where every request is the admin \"anonymous\": set --auth=iap or --auth=oidc"))
	}
	return errs
}

// validateTokens checks a mode that verifies tokens.
func (c Config) validateTokens(audienceFlag, audience string) []error {
	var errs []error
	if audience == "" {
		errs = append(errs, fmt.Errorf("--auth=%s needs %s", c.Mode, audienceFlag))
	}
	if c.Policy == nil {
		errs = append(errs, fmt.Errorf("--auth=%s needs --policy: without one nobody may see anything", c.Mode))
	}
	return errs
}
