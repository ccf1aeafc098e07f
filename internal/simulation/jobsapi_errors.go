package simulation

import (
	"encoding/json"
	"net/http"
)

// apiError is an error answer of the REST API. It is written in the shape
// Google APIs answer errors with, which the official clients decode into
// *googleapi.Error:
//
//	{"error":{"code":403,"message":"…","errors":[{"message":"…","domain":"global","reason":"accessDenied"}],"status":"PERMISSION_DENIED"}}
//
// The reason is the ErrorProto reason of BigQuery's error table
// (https://cloud.google.com/bigquery/docs/error-messages): accessDenied
// (403), notFound (404), invalid (400), rateLimitExceeded (403 or 429),
// backendError (500, 503 or 504).
type apiError struct {
	status  int
	reason  string
	message string
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []errorItem `json:"errors"`
	Status  string      `json:"status"`
}

type errorItem struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

// statusNames are the google.rpc codes Google APIs name HTTP statuses by.
var statusNames = map[int]string{
	http.StatusBadRequest: "INVALID_ARGUMENT", http.StatusForbidden: "PERMISSION_DENIED", http.StatusNotFound: "NOT_FOUND",
	http.StatusTooManyRequests: "RESOURCE_EXHAUSTED", http.StatusInternalServerError: "INTERNAL",
	http.StatusServiceUnavailable: "UNAVAILABLE",
}

func (e *apiError) write(w http.ResponseWriter) {
	body := errorBody{Error: errorDetail{Code: e.status, Message: e.message, Status: statusNames[e.status],
		Errors: []errorItem{{Message: e.message, Domain: "global", Reason: e.reason}}}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body) // a client gone away is no concern of the simulation
}

func notFound(message string) *apiError {
	return &apiError{status: http.StatusNotFound, reason: "notFound", message: message}
}

func invalid(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, reason: "invalid", message: message}
}

// accessDenied is BigQuery's answer to a caller without perm on resource,
// for example "Access Denied: Project p: User does not have
// bigquery.jobs.listAll permission in project p.".
func accessDenied(resource, perm, scope string) *apiError {
	return &apiError{status: http.StatusForbidden, reason: "accessDenied",
		message: "Access Denied: " + resource + ": User does not have " + perm + " permission " + scope + "."}
}
