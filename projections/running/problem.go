package running

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	httpproblem "github.com/bqobserver/bqobserver/internal/problem"
)

// problem is an RFC 9457 problem document that may name the bad query
// parameters of a request.
type problem struct {
	httpproblem.Document
	Invalid []paramError `json:"invalid_params,omitempty"`
}

// writeProblem answers r with a problem document of the given status.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, invalid []paramError) {
	httpproblem.Send(w, status, problem{Document: httpproblem.New(r, status, detail), Invalid: invalid})
}

// badRequest answers 400 naming every bad parameter.
func badRequest(w http.ResponseWriter, r *http.Request, invalid []paramError) {
	detail := "invalid query parameter " + strconv.Quote(invalid[0].Name) + ": " + invalid[0].Reason
	if len(invalid) > 1 {
		detail += " (and " + strconv.Itoa(len(invalid)-1) + " more in invalid_params)"
	}
	writeProblem(w, r, http.StatusBadRequest, detail, invalid)
}

// unavailable answers 503 with Retry-After.
func unavailable(w http.ResponseWriter, r *http.Request, retry time.Duration, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Round(time.Second)/time.Second)))
	writeProblem(w, r, http.StatusServiceUnavailable, detail, nil)
}

// writeJSON answers r with v as JSON, or with a 500 problem document when v
// does not encode (a time outside years 0-9999).
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	writeJSONStatus(w, r, http.StatusOK, v)
}

// writeJSONStatus is writeJSON with another status than 200.
func writeJSONStatus(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "encoding the answer: "+err.Error(), nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a failed write means the client left
}

// writeRaw answers with body, which is JSON.
func writeRaw(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(body) // a failed write means the client left
}
