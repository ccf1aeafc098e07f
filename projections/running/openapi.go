package running

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of Handler.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document describing Handler's endpoints.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func (p *Projection) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI) // a failed write means the client left
}
