package access

import (
	"net/http"
	"strconv"

	httpproblem "github.com/bqobserver/bqobserver/internal/problem"
)

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
	httpproblem.Write(w, r, status, err.Error())
	if onReject != nil {
		onReject(r, status, err)
	}
}
