package running

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// TestAppendJobIsEncodingJSON checks appendJob against encoding/json on
// jobs with every field set or not, and strings that need escaping: control
// characters, HTML, invalid UTF-8, U+2028. The two must decode to the same
// values, and be the same bytes once encoding/json's strings are rewritten
// in their shortest form.
func TestAppendJobIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	nasty := []string{"", "plain", "quote \" back \\ slash", "<script>&amp;</script>", "tab\tnew\nline\r\x00\x01\x1f\x7f",
		"\b\f", "bad \xff\xfe utf8 \xe2\x82", "sep \u2028 \u2029", "ünïcödé 日本語 🎉", "\u00a0"}
	str := func() string { return nasty[r.IntN(len(nasty))] }
	for i := range 2000 {
		var v view
		fill(r, reflect.ValueOf(&v.job).Elem(), str)
		v.stale = r.IntN(2) == 0
		v.hidden = r.IntN(4) == 0
		if i%3 == 0 {
			v.job.Query = string(make([]byte, 2000)) + "é" + str()
		}
		for _, preview := range []int{0, 64, 1024} {
			want, err := json.Marshal(jobOf(&v, preview))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendJob(nil, &v.job, v.stale, v.hidden, preview)
			if !ok {
				t.Fatalf("job %d, preview %d: appendJob refused it", i, preview)
			}
			if err := sameJSON(got, want); err != nil {
				t.Fatalf("job %d, preview %d: %v", i, preview, err)
			}
		}
	}
}

// sameJSON reports how got differs from encoding/json's want: in the
// values they decode to (by encoding/json, numbers kept exact), or in
// their bytes once want's strings take their shortest form.
func sameJSON(got, want []byte) error {
	decode := func(b []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	g, err := decode(got)
	if err != nil {
		return fmt.Errorf("invalid JSON %s: %w", got, err)
	}
	w, err := decode(want)
	if err != nil {
		return fmt.Errorf("encoding/json's %s: %w", want, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		return fmt.Errorf("values differ from encoding/json's (-json +got):\n%s", diff)
	}
	shortest := jsontext.Value(want)
	if err := shortest.Format(); err != nil {
		return fmt.Errorf("formatting encoding/json's %s: %w", want, err)
	}
	if string(got) != string(shortest) {
		i := 0
		for i < len(got) && i < len(shortest) && got[i] == shortest[i] {
			i++
		}
		from := max(i-40, 0)
		return fmt.Errorf("bytes differ from encoding/json's in shortest form at byte %d:\n got …%s\nwant …%s",
			i, got[from:min(i+40, len(got))], shortest[from:min(i+40, len(shortest))])
	}
	return nil
}

func TestAppendJobRefusesWhatJSONRefuses(t *testing.T) {
	v := view{job: events.Job{Key: events.JobKey{Project: "p", Location: "l", JobID: "j"}}}
	v.job.CreateTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := json.Marshal(jobOf(&v, 0)); err == nil {
		t.Fatal("encoding/json encodes year 10000 now")
	}
	if b, ok := appendJob([]byte("x"), &v.job, false, false, 0); ok || string(b) != "x" {
		t.Errorf("appendJob = %q, %v; want the buffer untouched and false", b, ok)
	}
}

// fill sets the exported fields of v at random, each left zero half the time.
func fill(r *rand.Rand, v reflect.Value, str func() string) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if r.IntN(2) == 0 {
				loc := []*time.Location{time.UTC, time.FixedZone("x", 3600+1800)}[r.IntN(2)]
				v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)*int64(r.IntN(2))).In(loc)))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), str)
			}
		}
		return
	}
	if r.IntN(2) == 0 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(str())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64:
		v.SetInt(r.Int64() - r.Int64())
	case reflect.Map:
		m := map[string]string{}
		for range 1 + r.IntN(3) {
			m[str()] = str()
		}
		v.Set(reflect.ValueOf(m))
	case reflect.Slice:
		s := make([]string, 1+r.IntN(3))
		for i := range s {
			s[i] = str()
		}
		v.Set(reflect.ValueOf(s))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), str) // may stay zero: a known zero
		v.Set(p)
	}
}
