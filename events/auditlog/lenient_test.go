package auditlog

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"10485760", 10485760, false},
		{"-5", -5, false},
		{"9223372036854775807", 9223372036854775807, false},
		{"1.0", 1, false},
		{"1e3", 1000, false},
		{"1.5", 0, true},
		{"9223372036854775808", 0, true},
		{"1e19", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"", 0, true},
		{"twelve", 0, true},
	}
	for _, tt := range tests {
		got, err := parseInt(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseInt(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSaturatingInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"42", 42, false},
		{"-9223372036854775808", math.MinInt64, false},
		{"-9223372036854775809", math.MinInt64, false},
		{"9223372036854775807", math.MaxInt64, false},
		{"9223372036854775808", math.MaxInt64, false},
		{"1e30", math.MaxInt64, false},
		{"-1e400", math.MinInt64, false},
		{"1.5", 0, true},
		{"NaN", 0, true},
		{"many", 0, true},
	}
	for _, tt := range tests {
		got, err := saturatingInt(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("saturatingInt(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestInt64Text(t *testing.T) {
	tests := []struct {
		json string
		want *int64
	}{
		{`"42"`, i64(42)},
		{`42`, i64(42)},
		{`42.0`, i64(42)},
		{`"\u0034\u0032"`, i64(42)},
		{`null`, nil},
		{`""`, nil},
	}
	for _, tt := range tests {
		var v struct {
			N int64Text `json:"n"`
		}
		if err := json.Unmarshal([]byte(`{"n":`+tt.json+`}`), &v); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tt.json, err)
		}
		var c converter
		got := c.int64("n", v.N)
		if diff := cmp.Diff(tt.want, got); diff != "" || c.err != nil {
			t.Errorf("int64(%s) = %v, %v; want %v (-want +got):\n%s", tt.json, got, c.err, tt.want, diff)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2021, 11, 25, 21, 56, 0, 276607000, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2021-11-25T21:56:00.276607Z", want, false},
		{"2021-11-25T21:56:00.276607000Z", want, false},
		{"2021-11-25T21:56:00.2766070001234Z", want, false},
		{"2021-11-25T22:56:00.276607+01:00", want, false},
		{"2021-11-25t21:56:00.276607z", want, false},
		{"2021-11-25 21:56:00.276607", want, false},
		{"2021-11-25 21:56:00.276607000", want, false},
		{"2021-11-25T21:56:00.276607", want, false},
		{"2021-11-25T21:56:00Z", want.Truncate(time.Second), false},
		{"2021-11-25", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2021-13-25T21:56:00Z", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if !got.Equal(tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("parseTime(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.Location() != time.UTC {
			t.Errorf("parseTime(%q) is in %v, want UTC", tt.in, got.Location())
		}
	}
}

func TestTablePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"projects/p/datasets/d/tables/t", "p.d.t"},
		{"projects/p/datasets/d/tables/t$20240101", "p.d.t$20240101"},
		{"projects/p/datasets/d/tables/t@1700000000000", "p.d.t@1700000000000"},
		{"p.d.t", "p.d.t"},
		{"projects/p/datasets/d/models/m", "projects/p/datasets/d/models/m"},
		{"projects/p/datasets/d", "projects/p/datasets/d"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := tablePath(tt.in); got != tt.want {
			t.Errorf("tablePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseJobPath(t *testing.T) {
	tests := []struct {
		in     string
		want   jobPath
		wantOK bool
	}{
		{"projects/p/jobs/j", jobPath{project: "p", id: "j"}, true},
		{"projects/p/locations/EU/jobs/j", jobPath{project: "p", location: "EU", id: "j"}, true},
		{"projects/p/jobs", jobPath{}, false},
		{"projects/p/jobs/", jobPath{}, false},
		{"projects//jobs/j", jobPath{}, false},
		{"projects/p/jobs/j/extra", jobPath{}, false},
		{"projects/p/datasets/d/tables/t", jobPath{}, false},
		{"jobs/j", jobPath{}, false},
		{"", jobPath{}, false},
	}
	for _, tt := range tests {
		got, ok := parseJobPath(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseJobPath(%q) = %+v, %t; want %+v, %t", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestTableList(t *testing.T) {
	var many, manyWant []string
	for i := range 40 {
		n := fmt.Sprintf("p.d.t%d", i%25)
		many = append(many, n, "")
		if i < 25 {
			manyWant = append(manyWant, n)
		}
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, nil},
		{"empty names dropped", []string{"", ""}, nil},
		{"order kept, duplicates dropped", []string{"b", "a", "b", "c", "a"}, []string{"b", "a", "c"}},
		{"long list", many, manyWant},
	}
	for _, tt := range tests {
		var l tableList
		for _, n := range tt.in {
			l.add(n)
		}
		if diff := cmp.Diff(tt.want, l.names); diff != "" {
			t.Errorf("%s: tableList mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCodeText(t *testing.T) {
	tests := []struct {
		json    string
		want    codeText
		wantErr bool
	}{
		{`3`, "3", false},
		{`3.0`, "3", false},
		{`"invalidQuery"`, "invalidQuery", false},
		{`null`, "", false},
		{`{}`, "", true},
		{`true`, "", true},
	}
	for _, tt := range tests {
		var s rpcStatus
		err := json.Unmarshal([]byte(`{"code":`+tt.json+`}`), &s)
		if s.Code != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("code %s = %q, %v; want %q, error %t", tt.json, s.Code, err, tt.want, tt.wantErr)
		}
	}
}
