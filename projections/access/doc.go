// Package access decides who may use the service and what each caller may
// see: it authenticates every request (Identity-Aware Proxy assertions,
// Google-signed ID tokens, or nobody at all on a loopback address), verifies
// the OIDC token Pub/Sub attaches to each push, maps the caller to a role
// through a policy file, and answers the visibility questions the
// projections ask about each job.
//
// # Authentication
//
// [Config.Mode] chooses how users are identified:
//
//   - [ModeNone]: every request is the admin principal "anonymous". Only safe
//     on a loopback address; [Config.Validate] refuses any other listen
//     address unless [Config.AllowUnauthenticated] is set.
//   - [ModeIAP]: every request carries x-goog-iap-jwt-assertion, an ES256 JWT
//     signed by Identity-Aware Proxy, with issuer https://cloud.google.com/iap
//     and audience [Config.IAPAudience]. The caller is the token's email.
//   - [ModeOIDC]: every request carries a Google-signed ID token as
//     Authorization: Bearer (RS256 or ES256), issuer https://accounts.google.com
//     or accounts.google.com, audience [Config.OIDCAudience], with a verified
//     email.
//
// Every token must carry a key id (kid) naming a key of the JSON Web Key Set,
// an expiry that has not passed and an issue time (and not-before time, when
// present) that has come, each with [ClockSkew] of tolerance. The key set is
// fetched once, cached, and refreshed when it is an hour old; a token naming
// an unknown key triggers a refresh at most once a minute, and a token whose
// signature does not match a known key never triggers one, so no request
// can make the service fetch keys on demand. When a refresh fails the cached
// keys stay in use. JWT parsing and the signature, algorithm and expiry checks
// are github.com/coreos/go-oidc/v3 and github.com/go-jose/go-jose/v4; this
// package only keeps the key cache and checks the claims.
//
// A [PushVerifier] checks the ID token Pub/Sub attaches to each push: a valid
// Google signature, the configured audience and issuer, and an email equal to
// the configured push service account with email_verified true. A missing or
// invalid token is 401, a valid token of another account is 403.
//
// # The policy file
//
// A policy file maps members to roles. It is YAML (JSON is YAML too):
//
//	roles:
//	  - role: admin
//	    members: ["user:alice@acme.example"]
//	  - role: viewer
//	    members: ["domain:acme.example"]
//	  - role: viewer
//	    show_queries: true
//	    members: ["user:*@dba.acme.example"]
//	  - role: own
//	    members: ["user:contractor@partner.example"]
//
// Members, compared without regard to case:
//
//   - user:EMAIL and serviceAccount:EMAIL match the caller's email. Both
//     match on the email alone (tokens do not say which kind of account they
//     belong to); the prefix records the intent.
//   - domain:DOMAIN matches every account that the Google Workspace or Cloud
//     Identity account whose primary domain is DOMAIN manages, as Google
//     IAM's domain: does: the token's hd (hosted domain) claim, which Google
//     sets only for managed accounts, to the primary domain, must be DOMAIN
//     (not a subdomain, nor a secondary domain). An account whose email is
//     at DOMAIN but which the organization does not manage (a consumer
//     account made with such an address) does not match; nor does a
//     service account.
//   - A pattern: user:/serviceAccount: values may contain '*', which matches
//     any run of characters other than '@', so user:*@eng.acme.example
//     matches everyone at eng.acme.example and user:*@*.acme.example
//     everyone in its subdomains. A pattern must keep one literal '@' and
//     some literal part of the domain. No other character is special.
//     A pattern matches the email as the token gives it, managed or not:
//     for everyone in the organization, prefer domain:.
//   - group: is rejected: resolving a group's members needs a directory
//     lookup (the Cloud Identity Groups API) that this service does not make.
//     allUsers and allAuthenticatedUsers are rejected too: any Google account
//     can obtain an ID token for any audience.
//
// The roles:
//
//   - admin sees every job with its query text and may cancel jobs.
//   - viewer sees every job; the query text of other people's jobs is hidden
//     unless the entry says show_queries: true.
//   - own sees only the jobs whose principal is the caller's own email.
//   - A caller no entry matches gets 403 on every request.
//
// When a caller matches several entries, the most privileged grant wins:
// admin, then viewer with show_queries, then viewer, then own. The order of
// the entries does not matter. The file is checked when it is loaded, and
// every problem is reported with its line.
//
// # Visibility
//
// The projections ask [CanSee], [ShowQuery] and [CanCancel] with the
// [Principal] the middleware put in the request's context ([PrincipalFrom]),
// through one per-request filter, [Scope] ([ScopeFrom]), that every list and
// detail handler applies. A request without a principal is the zero
// Principal, which sees nothing.
// Visibility applies wherever a job appears: list, detail, stream, summary,
// the 2019-compatible endpoint and the history API. An own caller's
// aggregates count only their jobs.
//
// A hidden query never reads as empty. When ShowQuery reports false, an API
// answer omits the query text in every form (the text, its preview, its
// truncation flag) and sets "query_hidden": true; the UI shows that the
// query is hidden. A free-text search must not match text the caller may
// not read, or searching would reveal it piece by piece. A job's error
// message stays, as BigQuery's own jobs.list shows it to callers who may
// not read the query: it can quote the query's identifiers and literals.
//
// # Cross-site requests
//
// A [WriteGuard] protects state-changing requests (every method other than
// GET, HEAD and OPTIONS): a browser request from another origin is refused
// (Sec-Fetch-Site, or Origin compared with the request's Host, as
// net/http.CrossOriginProtection does, plus configured trusted origins), and
// the body must be declared application/json, which no cross-site form or
// simple request can send without a CORS preflight this service never
// grants.
//
// Every refusal is an RFC 9457 problem document (application/problem+json);
// 401 answers carry WWW-Authenticate.
package access
