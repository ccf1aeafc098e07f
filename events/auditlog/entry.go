package auditlog

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Type URLs and names that identify BigQuery audit entries.
const (
	auditLogType    = "type.googleapis.com/google.cloud.audit.AuditLog"
	v1Type          = "type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData"
	v2Type          = "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata"
	bigQueryService = "bigquery.googleapis.com"
)

// logEntry is the wire shape of a Cloud Logging LogEntry, holding only what
// the decoders read. Field names match case-insensitively, which also reads
// collectors that lower-case keys (insertid, protopayload).
type logEntry struct {
	LogName          string    `json:"logName"`
	InsertID         string    `json:"insertId"`
	Timestamp        string    `json:"timestamp"`
	ReceiveTimestamp string    `json:"receiveTimestamp"`
	Resource         resource  `json:"resource"`
	ProtoPayload     *auditLog `json:"protoPayload"`
	TextPayload      present   `json:"textPayload"`
	JSONPayload      present   `json:"jsonPayload"`

	// auditLog holds the fields of a bare protoPayload, written without
	// its envelope; it stays empty for a whole LogEntry.
	auditLog
}

// resource is the LogEntry's monitored resource.
type resource struct {
	Type   string `json:"type"`
	Labels struct {
		ProjectID string `json:"project_id"`
		Location  string `json:"location"`
	} `json:"labels"`
}

// auditLog is the wire shape of google.cloud.audit.AuditLog.
type auditLog struct {
	Type string `json:"@type"`
	// AtSignType is "@type" as renamed by some collectors (Panther).
	AtSignType         string       `json:"at_sign_type"`
	ServiceName        string       `json:"serviceName"`
	MethodName         string       `json:"methodName"`
	ResourceName       string       `json:"resourceName"`
	AuthenticationInfo authInfo     `json:"authenticationInfo"`
	Status             rpcStatus    `json:"status"`
	ServiceData        *v1AuditData `json:"serviceData"`
	Metadata           *v2Metadata  `json:"metadata"`
}

type authInfo struct {
	PrincipalEmail   string `json:"principalEmail"`
	PrincipalSubject string `json:"principalSubject"`
}

// principal returns who made the call: the email, or failing that the
// subject (set for identities without an email).
func (a *auditLog) principal() string {
	if a.AuthenticationInfo.PrincipalEmail != "" {
		return a.AuthenticationInfo.PrincipalEmail
	}
	return a.AuthenticationInfo.PrincipalSubject
}

func (a *auditLog) typeName() string {
	if a.Type != "" {
		return a.Type
	}
	return a.AtSignType
}

// looksAudit reports whether a holds an AuditLog: its type says so, or it
// carries one of the two BigQuery payloads.
func (a *auditLog) looksAudit() bool {
	return a.typeName() == auditLogType || a.ServiceData != nil || a.Metadata != nil
}

// payload returns the entry's AuditLog: the protoPayload, or the entry
// itself when it is a bare protoPayload. It is nil when there is neither.
func (w *logEntry) payload() *auditLog {
	if w.ProtoPayload != nil {
		return w.ProtoPayload
	}
	if w.auditLog.looksAudit() {
		return &w.auditLog
	}
	return nil
}

// audit returns the entry's AuditLog, or why the entry is not one.
func (w *logEntry) audit() (*auditLog, error) {
	a := w.payload()
	switch {
	case a == nil && bool(w.TextPayload || w.JSONPayload):
		return nil, invalid(ReasonNotAuditEntry, nil, "log entry has a text or JSON payload, not an audit log")
	case a == nil:
		return nil, invalid(ReasonNotAuditEntry, nil, "neither a LogEntry with a protoPayload nor an AuditLog")
	case a.typeName() != "" && a.typeName() != auditLogType:
		return nil, invalid(ReasonNotAuditEntry, nil, "protoPayload is a %q, not an AuditLog", a.typeName())
	}
	return a, nil
}

// rpcStatus is a google.rpc.Status.
type rpcStatus struct {
	Code    codeText `json:"code"`
	Message string   `json:"message"`
}

// failed reports whether the status carries an error code.
func (s *rpcStatus) failed() bool { return s.Code != "" && s.Code != "0" }

// empty reports whether the status carries nothing (v1 writes "error": {}
// for a successful job).
func (s *rpcStatus) empty() bool { return !s.failed() && s.Message == "" }

// codeText is an error code, numeric (google.rpc.Code) or textual (a
// BigQuery error reason), kept as text.
type codeText string

var errCodeShape = errors.New("error code is neither a number nor a string")

// UnmarshalJSON accepts a JSON number or string.
func (c *codeText) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*c = codeText(s)
		return err
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		*c = codeText(normaliseNumber(string(b)))
		return nil
	}
	return errCodeShape
}

// normaliseNumber writes an integral number such as 3.0 as 3.
func normaliseNumber(s string) string {
	if v, err := parseInt(s); err == nil && strings.ContainsAny(s, ".eE") {
		return strconv.FormatInt(v, 10)
	}
	return s
}

// present records that a JSON member exists without decoding it, for
// payload keys that only need to be recognised.
type present bool

// UnmarshalJSON marks the member present unless it is null.
func (p *present) UnmarshalJSON(b []byte) error {
	*p = string(b) != "null"
	return nil
}
