package events

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/bigtable"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// storageVersion is the format of the events the log writes. Readers refuse
// other versions rather than guess. Adding an optional field keeps the
// version (older readers ignore it); any other change needs a new version
// and a reader for the old one.
const storageVersion = 1

// storedEvent is an event as the log stores it in a cell: JSON with a format
// version. It is the storage shape, converted from and to Event at this edge
// only, so the domain type and the events topic's JSON can change without
// changing what is on disk. Zero values are omitted; pointers, maps and
// slices keep the difference between nil and empty, so an event reads back
// exactly as it was appended (times compare equal with time.Time.Equal).
// The facts' stored form, storedFacts, is generated from package jobfields.
type storedEvent struct {
	Version  int          `json:"v"`
	ID       string       `json:"id"`
	Kind     string       `json:"kind"`
	Project  string       `json:"project"`
	Location string       `json:"location"`
	JobID    string       `json:"job_id"`
	Time     time.Time    `json:"time"`
	State    string       `json:"state,omitzero"`
	Error    *storedError `json:"error,omitzero"`
	Facts    storedFacts  `json:"facts,omitzero"`
	Source   storedSource `json:"source,omitzero"`
}

type storedError struct {
	Code    string `json:"code,omitzero"`
	Message string `json:"message,omitzero"`
}

type storedSource struct {
	Format   string `json:"format,omitzero"`
	Method   string `json:"method,omitzero"`
	LogName  string `json:"log_name,omitzero"`
	InsertID string `json:"insert_id,omitzero"`
}

// decodeOptions make the JSON v2 decoder read stored events as
// encoding/json did (names in any case, duplicate names and invalid UTF-8
// accepted), at two to three times its speed: a rebuild decodes every event
// of every running job.
var decodeOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// decodeEvent returns the event stored in a cell value.
func decodeEvent(b []byte) (Event, error) {
	if e, ok := readStoredEvent(b); ok {
		return e, nil
	}
	return decodeEventReflect(b)
}

// decodeEventReflect is decodeEvent through the json package alone: the
// reference readStoredEvent is held to, and the decoder of every value
// it gives up on.
func decodeEventReflect(b []byte) (Event, error) {
	var s storedEvent
	if err := jsonv2.Unmarshal(b, &s, decodeOptions); err != nil {
		return Event{}, fmt.Errorf("decoding a stored event: %w", err)
	}
	if s.Version != storageVersion {
		return Event{}, fmt.Errorf("decoding stored event %s: format version %d is not %d", s.ID, s.Version, storageVersion)
	}
	return s.event(), nil
}

// event converts the stored form to the domain's.
func (s *storedEvent) event() Event {
	e := Event{
		ID: s.ID, Kind: Kind(s.Kind), Job: JobKey{Project: s.Project, Location: s.Location, JobID: s.JobID},
		Time: s.Time, State: State(s.State), Facts: s.Facts.facts(),
		Source: Source{Format: s.Source.Format, Method: s.Source.Method, LogName: s.Source.LogName, InsertID: s.Source.InsertID},
	}
	if s.Error != nil {
		e.Error = &JobError{Code: s.Error.Code, Message: s.Error.Message}
	}
	return e
}

// eventsFilter keeps the event cells of a row. Job rows hold nothing else,
// and decodeRow reads only that family, so reads of job rows go without
// it: the emulators (bttest and cbtemulator) compile a filter's regular
// expression once per cell, which made up a third of their work in a
// rebuild.
var eventsFilter = bigtable.FamilyFilter("^" + familyEvents + "$")

// decodeRow returns the events of a job row ordered by (Time, ID), in buf's
// array when it is large enough: a read of many jobs decodes each job's
// into the array of the one before (readJobBatch), which spares a rebuild
// an allocation of some 2 KB per job (an Event is 672 bytes).
func decodeRow(row bigtable.Row, buf []Event) ([]Event, error) {
	cells := row[familyEvents]
	if len(cells) == 0 {
		return buf[:0], nil
	}
	evs := slices.Grow(buf[:0], len(cells))
	for _, c := range cells {
		e, err := decodeEvent(c.Value)
		if err != nil {
			return nil, fmt.Errorf("row %s, column %s: %w", c.Row, c.Column, err)
		}
		evs = append(evs, e)
	}
	// Cells come in qualifier order, which is (Time, ID) order already;
	// sorting keeps the promise whatever a backend does.
	slices.SortStableFunc(evs, func(a, b Event) int { return compareEvents(&a, &b) })
	return evs, nil
}

// compareEvents orders events by (Time, ID).
func compareEvents(a, b *Event) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
