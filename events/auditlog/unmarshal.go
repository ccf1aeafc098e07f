package auditlog

import (
	"encoding/json"
	"errors"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// wireOptions make the fast decoder read the wire types exactly as
// encoding/json does: member names match case-insensitively (but, unlike
// the v2 default, not ignoring '-' and '_'), duplicate names are allowed
// and the last one wins, invalid UTF-8 becomes U+FFFD, a null leaves a
// scalar or struct as it was, and a repeated object merges into what came
// before, list elements included. encoding/json's other habits concern
// types the wire shapes do not use (byte slices, arrays, times, durations,
// the string tag option, methods on map keys). TestWireDecodersAgree and
// FuzzWireDecoders hold the two decoders to the same result.
var wireOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsonv1.MergeWithLegacySemantics(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// unmarshalEntry reads entry into w.
//
// Entries that decode, nearly all of them, are read once by the fast
// decoder (github.com/go-json-experiment/json, about three times faster
// than encoding/json on audit entries). An entry it rejects is read again
// by encoding/json, the reference for what the wire types accept, which
// keeps decoding after a field of the wrong type: its error and the
// members it did read are what unmarshalError explains. Malformed entries
// are rare, so reading them twice costs little.
func unmarshalEntry(entry []byte, w *logEntry) error {
	if jsonv2.Unmarshal(entry, w, wireOptions) == nil {
		return nil
	}
	*w = logEntry{}
	if err := json.Unmarshal(entry, w); err != nil {
		return unmarshalError(entry, w, err)
	}
	return nil
}

// unmarshalError explains why an entry did not decode. The partially
// decoded w still holds the members that did, which tell an unknown
// payload apart from a bad field.
func unmarshalError(entry []byte, w *logEntry, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return invalid(ReasonBadJSON, err, "not valid JSON (offset %d)", syntax.Offset)
	case firstByte(entry) != '{':
		return invalid(ReasonNotAuditEntry, nil, "a JSON %s, not an object", jsonKind(firstByte(entry)))
	}
	if a, aerr := w.audit(); aerr != nil {
		return aerr
	} else if perr := a.checkPayloadTypes(); perr != nil {
		return perr
	}
	if errors.As(err, &typ) {
		return invalid(ReasonBadField, err, "field %s holds a JSON %s", typ.Field, typ.Value)
	}
	return invalid(ReasonBadField, err, "a field has an unusable value")
}

func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array (split streams with Split)"
	case '"':
		return "string"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}
