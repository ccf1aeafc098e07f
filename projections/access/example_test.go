package access_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/bqobserver/bqobserver/projections/access"
)

// A server puts the API and UI behind the authenticator, state-changing
// requests behind the write guard too, the push intake behind the write
// guard and the push verifier, and leaves health checks open.
func Example() {
	policy, err := access.ParsePolicy("policy.yaml", []byte(`
roles:
  - role: admin
    members: ["user:alice@acme.example"]
  - role: viewer
    members: ["domain:acme.example"]
`))
	if err != nil {
		log.Fatal(err)
	}
	auth, err := access.New(access.Config{
		Mode:        access.ModeIAP,
		IAPAudience: "/projects/123456/global/backendServices/789",
		Policy:      policy,
		ListenAddr:  ":8080",
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	push, err := access.NewPushVerifier(access.PushConfig{
		Audience:       "https://bqobserver.acme.example/push/audit",
		ServiceAccount: "pubsub-push@observer.iam.gserviceaccount.com",
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	writes, err := access.NewWriteGuard(nil)
	if err != nil {
		log.Fatal(err)
	}

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		fmt.Fprintln(w, p.Email, access.ShowQuery(p, "bob@acme.example"))
	})
	mux := http.NewServeMux()
	mux.Handle("/", auth.Middleware(writes.Middleware(api)))
	mux.Handle("POST /push/audit", writes.Middleware(push.Middleware(api)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })

	fmt.Println(access.IsLoopbackAddr(":8080"), access.IsLoopbackAddr("[::1]:8080"))
	// Output: false true
}
