package auditlog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// Input is one audit entry taken from a stream, with where it came from.
type Input struct {
	// Name says where the entry came from: the stream's name alone for a
	// single entry, name#N for the N-th element (from 1) of a JSON array,
	// name:N for the entry starting on line N of JSON lines.
	Name string
	// Data is the entry's JSON, a LogEntry (or bare AuditLog) for Decode.
	Data []byte
	// Attributes are the Pub/Sub message attributes when the entry came in
	// a push envelope, else nil.
	Attributes map[string]string
}

// PushMessage is the message inside a Pub/Sub push request.
type PushMessage struct {
	// Data is the message payload, already base64-decoded.
	Data []byte
	// Attributes are the message attributes (nil when there are none).
	Attributes map[string]string
	// MessageID and PublishTime are as Pub/Sub wrote them.
	MessageID   string
	PublishTime string
	// Subscription is the push subscription that delivered the message.
	Subscription string
}

// pushEnvelope is the wire shape of a Pub/Sub push request body. Pub/Sub
// writes both spellings of the message id and publish time.
type pushEnvelope struct {
	Message *struct {
		Data         string            `json:"data"`
		Attributes   map[string]string `json:"attributes"`
		MessageID    string            `json:"messageId"`
		MessageIDAlt string            `json:"message_id"`
		PublishTime  string            `json:"publishTime"`
		PublishAlt   string            `json:"publish_time"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// ParsePushEnvelope parses a Pub/Sub push request body. The error is an
// *Error (errors.Is events.ErrInvalid) when the body is not JSON, has no
// message, or its data is not base64.
func ParsePushEnvelope(body []byte) (PushMessage, error) {
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return PushMessage{}, invalid(ReasonBadEnvelope, err, "push request body is not a JSON envelope")
	}
	return env.message()
}

func (env *pushEnvelope) message() (PushMessage, error) {
	m := env.Message
	if m == nil {
		return PushMessage{}, invalid(ReasonBadEnvelope, nil, "push envelope has no message")
	}
	data, err := decodeBase64(m.Data)
	if err != nil {
		return PushMessage{}, invalid(ReasonBadEnvelope, err, "push message data is not base64")
	}
	return PushMessage{
		Data:         data,
		Attributes:   m.Attributes,
		MessageID:    first(m.MessageID, m.MessageIDAlt),
		PublishTime:  first(m.PublishTime, m.PublishAlt),
		Subscription: env.Subscription,
	}, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// Split splits a stream into single entries. The stream may be one
// LogEntry, a JSON array of them, JSON lines (or any whitespace-separated
// sequence of JSON objects), or Pub/Sub push envelopes, which are unwrapped.
//
// Split checks framing, not content: an entry that is malformed in itself
// (a line of JSON lines that does not parse, say) is returned as an Input
// for Decode to report. The error is an *Error (errors.Is
// events.ErrInvalid) for input with no entries, a JSON array that does not
// parse, or a push envelope that cannot be unwrapped.
func Split(name string, data []byte) ([]Input, error) {
	body := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\uFEFF")))
	if len(body) == 0 {
		return nil, invalid(ReasonBadJSON, nil, "%s holds no entries", name)
	}
	if body[0] == '[' {
		return splitArray(name, body)
	}
	values, lines, err := splitValues(body)
	if err != nil {
		return splitLines(name, body)
	}
	if len(values) == 1 {
		return unwrapAll(Input{Name: name, Data: values[0]})
	}
	ins := make([]Input, len(values))
	for i, v := range values {
		ins[i] = Input{Name: name + ":" + strconv.Itoa(lines[i]), Data: v}
	}
	return unwrapAll(ins...)
}

func splitArray(name string, body []byte) ([]Input, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		return nil, invalid(ReasonBadJSON, err, "%s is not a valid JSON array", name)
	}
	if len(elems) == 0 {
		return nil, invalid(ReasonBadJSON, nil, "%s is an empty JSON array", name)
	}
	ins := make([]Input, len(elems))
	for i, e := range elems {
		ins[i] = Input{Name: name + "#" + strconv.Itoa(i+1), Data: e}
	}
	return unwrapAll(ins...)
}

// splitValues reads consecutive JSON values and the line each starts on.
func splitValues(body []byte) (values []json.RawMessage, lines []int, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	line, counted := 1, 0
	for {
		var v json.RawMessage
		start := dec.InputOffset()
		if err := dec.Decode(&v); err == io.EOF {
			return values, lines, nil
		} else if err != nil {
			return nil, nil, err
		}
		start += int64(len(body[start:]) - len(bytes.TrimLeft(body[start:], " \t\r\n")))
		line += bytes.Count(body[counted:start], []byte("\n"))
		counted = int(start)
		values, lines = append(values, v), append(lines, line)
	}
}

// splitLines splits JSON lines that do not all parse, so that each bad line
// is reported on its own. Input whose first line is not JSON is kept whole:
// it is one malformed entry, not lines.
func splitLines(name string, body []byte) ([]Input, error) {
	lines := bytes.Split(body, []byte("\n"))
	if !json.Valid(bytes.TrimSpace(lines[0])) {
		return []Input{{Name: name, Data: body}}, nil
	}
	var ins []Input
	for i, l := range lines {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			ins = append(ins, Input{Name: name + ":" + strconv.Itoa(i+1), Data: l})
		}
	}
	return unwrapAll(ins...)
}

// unwrapAll replaces each push envelope among ins by the entry it carries.
func unwrapAll(ins ...Input) ([]Input, error) {
	var errs []error
	for i := range ins {
		if err := ins[i].unwrap(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ins, nil
}

// unwrap replaces a push envelope by its message. Anything that is not an
// envelope is left for Decode.
func (in *Input) unwrap() error {
	var env pushEnvelope
	if json.Unmarshal(in.Data, &env) != nil || env.Message == nil {
		return nil
	}
	m, err := env.message()
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Detail = in.Name + ": " + e.Detail
		}
		return err
	}
	in.Data, in.Attributes = m.Data, m.Attributes
	return nil
}
