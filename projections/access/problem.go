package access

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an RFC 9457 problem document.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// refuse answers r with a problem document for err, whose kind decides the
// status and challenge the WWW-Authenticate of a 401, and calls onReject
// when set.
func refuse(w http.ResponseWriter, r *http.Request, err error, challenge string, onReject func(*http.Request, int, error)) {
	status := StatusOf(err)
	h := w.Header()
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", challenge)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(int(keysMinInterval.Seconds())))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: err.Error(), Instance: r.URL.Path}
	_ = json.NewEncoder(w).Encode(p) // a failed write means the client left
	if onReject != nil {
		onReject(r, status, err)
	}
}
