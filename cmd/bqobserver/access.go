package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/projections/access"
)

// accessFlags configure who may use the service and who may push to it;
// RunCmd embeds them.
type accessFlags struct {
	Auth                 string   `enum:"none,iap,oidc" default:"none" help:"How users are identified: none (every caller is an admin; only on a loopback --http-addr unless --allow-unauthenticated), iap (Identity-Aware Proxy's signed x-goog-iap-jwt-assertion header), oidc (a Google-signed ID token as Authorization: Bearer, for API clients and scripts)."`
	IAPAudience          string   `name:"iap-audience" help:"Audience of IAP assertions: /projects/NUMBER/global/backendServices/ID behind a load balancer, /projects/NUMBER/apps/PROJECT_ID on App Engine. Required with --auth=iap."`
	OIDCAudience         string   `name:"oidc-audience" help:"Audience of ID tokens, usually the service's URL. Required with --auth=oidc."`
	OIDCIssuer           string   `name:"oidc-issuer" help:"Issuer of ID tokens (default https://accounts.google.com); another issuer needs --auth-jwks-url."`
	AuthJWKSURL          string   `name:"auth-jwks-url" help:"Where the keys that verify user tokens come from: a JSON Web Key Set (EC and RSA keys). Default: IAP's keys with --auth=iap, Google's otherwise."`
	PushJWKSURL          string   `name:"push-jwks-url" help:"Where the keys that verify push tokens come from: a JSON Web Key Set. Default: Google's, which sign every Pub/Sub push whatever --auth is (another is for tests)."`
	Policy               string   `help:"Access policy: a YAML file mapping members (user:, serviceAccount:, domain:, user:*@… patterns) to roles (admin, viewer, own). Required with --auth=iap and --auth=oidc."`
	AllowUnauthenticated bool     `help:"Allow --auth=none on a non-loopback --http-addr: everyone who can reach the service is an admin. Only behind something that authenticates for it."`
	PushAudience         string   `help:"Audience of the OIDC tokens Pub/Sub attaches to pushes: the push URL given to setup --push-url, Pub/Sub's own default. Required with --push-service-account off a loopback --http-addr; on one, the push URL as each request names it (https://HOST/push/audit)."`
	PushServiceAccount   string   `help:"Service account whose OIDC token every push must carry (its email, verified). Required with --push-endpoint unless --auth=none; with --auth=none it turns the check on."`
	MetricsAddr          string   `help:"Serve /metrics on this address instead of --http-addr, where it needs an authenticated viewer or admin (health checks stay open)."`
	AllowedOrigins       []string `help:"Origins (scheme://host[:port]) besides the service's own from which browsers may send state-changing requests (cancel)." sep:","`
}

// gate is the service's access: who is calling, which writes are
// same-origin, and which pushes are Pub/Sub's.
type gate struct {
	auth   *access.Authenticator
	writes *access.WriteGuard
	pushes *access.PushConfig // nil: pushes are not checked (--auth=none without --push-service-account)
	log    *slog.Logger
}

// gate checks the access flags against each other and the listen address,
// reporting every problem at once with the flags that fix it, and builds
// the service's access. It reads the policy file.
func (c *RunCmd) gate(log *slog.Logger, addr string) (*gate, error) {
	var errs []error
	var policy *access.Policy
	if c.Policy != "" {
		var err error
		if policy, err = access.LoadPolicy(c.Policy); err != nil {
			errs = append(errs, fmt.Errorf("--policy: %w", err))
		}
	}
	cfg := access.Config{Mode: access.Mode(c.Auth), IAPAudience: c.IAPAudience, OIDCAudience: c.OIDCAudience, OIDCIssuer: c.OIDCIssuer,
		JWKSURL: c.AuthJWKSURL, Policy: policy, ListenAddr: addr, AllowUnauthenticated: c.AllowUnauthenticated,
		OnReject: func(r *http.Request, status int, err error) {
			log.Info("request refused", "status", status, "path", r.URL.Path, "error", err.Error())
		}}
	if c.Policy != "" && policy == nil && cfg.Mode != access.ModeNone {
		cfg.Policy = &access.Policy{} // reported above; keep Validate from reporting it missing
	}
	errs = append(errs, cfg.Validate(), c.validatePush(addr), c.validateMetrics(addr))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring access: %w", err)
	}
	g := &gate{log: log}
	var err error
	if g.auth, err = access.New(cfg, nil); err != nil {
		return nil, err
	}
	if g.writes, err = access.NewWriteGuard(c.AllowedOrigins); err != nil {
		return nil, err
	}
	if c.PushServiceAccount != "" {
		// Pub/Sub signs pushes with Google's keys, not the users' issuer's.
		g.pushes = &access.PushConfig{Audience: c.PushAudience, ServiceAccount: c.PushServiceAccount, JWKSURL: c.PushJWKSURL}
	}
	return g, nil
}

// validatePush requires the push token check whenever users are
// authenticated, and, off a loopback address, the audience its tokens
// must name: without it, any token of the push service account for a push
// URL of any host would do, such as one replayed from another deployment
// that pushes as the same account.
func (c *RunCmd) validatePush(addr string) error {
	switch {
	case c.PushServiceAccount != "" && c.PushAudience == "" && !access.IsLoopbackAddr(addr):
		return fmt.Errorf("--push-service-account on %s needs --push-audience: the push URL given to setup --push-url (https://HOST/push/audit)", addr)
	case c.PushEndpoint && c.Auth != string(access.ModeNone) && c.PushServiceAccount == "":
		return fmt.Errorf("--push-endpoint with --auth=%s needs --push-service-account: pushes must prove they come from Pub/Sub", c.Auth)
	case c.PushServiceAccount != "" && !strings.Contains(c.PushServiceAccount, "@"):
		return fmt.Errorf("--push-service-account=%s is not an email", c.PushServiceAccount)
	case c.PushAudience != "" && c.PushServiceAccount == "":
		return errors.New("--push-audience has no effect without --push-service-account")
	}
	return nil
}

// validateMetrics keeps the metrics off the main address when asked.
func (c *RunCmd) validateMetrics(addr string) error {
	if c.MetricsAddr != "" && c.MetricsAddr == addr {
		return fmt.Errorf("--metrics-addr=%s is --http-addr: leave it empty to serve /metrics there", c.MetricsAddr)
	}
	return nil
}

// users wraps what callers use (the API, the page, the metrics on the main
// address): every request is authenticated, every state-changing one must
// be same-origin and declare application/json, and no body may be larger
// than an API request needs.
func (g *gate) users(h http.Handler) http.Handler {
	return g.auth.Middleware(g.writes.Middleware(limitBody(h, maxAPIBody)))
}

// atLeast wraps what only some callers may use, as users does, and refuses
// with 403 a caller whose role is below role: the metrics, whose series
// name projects and count the whole organization's work, are for callers
// who see every job; the profiles, which show the command line and every
// goroutine, for admins.
func (g *gate) atLeast(role access.Role, what string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return g.users(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, _ := access.PrincipalFrom(r.Context()); p.Role < role {
				problem.Write(w, r, http.StatusForbidden, fmt.Sprintf("%s are for callers with the %s role or above", what, role))
				return
			}
			h.ServeHTTP(w, r)
		}))
	}
}

// maxAPIBody bounds the body of any request to the API or the page: the
// largest the API reads is a cancel request's reason.
const maxAPIBody = 64 << 10

// limitBody bounds what h may read of a request's body.
func limitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// push wraps the push intake: a push must declare application/json and
// come from no browser page of another origin, and, when pushes are
// checked, carry Pub/Sub's token. refused counts and logs every refusal.
func (g *gate) push(h http.Handler, refused func(*http.Request, int, error)) (http.Handler, error) {
	if g.pushes != nil {
		cfg := *g.pushes
		cfg.OnReject = refused
		v, err := access.NewPushVerifier(cfg, nil)
		if err != nil {
			return nil, err
		}
		h = v.Middleware(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.writes.Check(r); err != nil {
			status := access.StatusOf(err)
			refused(r, status, err)
			problem.Write(w, r, status, err.Error())
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// serveMetrics serves /metrics on --metrics-addr, when set, to whoever can
// reach that address (an internal network, a sidecar).
func (c *RunCmd) serveMetrics(e *env, l *lifecycle, metrics http.Handler) error {
	if c.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listening on --metrics-addr=%s: %w", c.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", problem.Fallback(mux, "only /metrics is served here"))
	srv := newHTTPServer(ln, securityHeaders(mux), e.log)
	l.start("metrics server", srv.serve)
	l.onStop("metrics server", srv.shutdown)
	fmt.Fprintf(e.stdout, "bqobserver serves metrics on http://%s/metrics\n", ln.Addr())
	return nil
}
