package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// AuditEventID derives the identity of an event decoded from a LogEntry.
// Cloud Logging guarantees logName + insertId unique per entry, so a
// redelivered or re-exported entry maps to the same ID. ordinal tells apart
// several events decoded from one entry (0 for the first).
func AuditEventID(logName, insertID string, ordinal int) string {
	return hashID("audit", logName, insertID, strconv.Itoa(ordinal))
}

// DerivedEventID derives the identity of an event that did not come from an
// audit entry (enrichment, reconciliation) from parts that define it, such as
// the job key, the kind and the observation.
func DerivedEventID(parts ...string) string {
	return hashID(append([]string{"derived"}, parts...)...)
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
