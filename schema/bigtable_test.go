package schema_test

import (
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/schema"
)

// bigtables connects to a server without creating the test's table: bttest
// always, the emulator when BIGTABLE_EMULATOR_HOST is set.
var bigtables = []struct {
	name    string
	connect func(t *testing.T) *logtest.Bigtable
}{
	{"bttest", func(t *testing.T) *logtest.Bigtable { return logtest.Connect(t, logtest.StartBttest(t)) }},
	{"emulator", func(t *testing.T) *logtest.Bigtable {
		return logtest.Connect(t, logtest.RequireEmulator(t))
	}},
}

// The rules of enrichment's families, which do not depend on the retention.
const (
	lfam = "(versions() > 1 || age() > 1d)"
	pfam = "(versions() > 1 || age() > 30d)"
)

// families returns the table's column families and their rules.
func families(t *testing.T, admin *bigtable.AdminClient, table string) map[string]string {
	t.Helper()
	info, err := admin.TableInfo(t.Context(), table)
	if err != nil {
		t.Fatalf("TableInfo(%s): %v", table, err)
	}
	got := map[string]string{}
	for _, f := range info.FamilyInfos {
		got[f.Name] = f.GCPolicy
	}
	return got
}

func TestApplyBigtable(t *testing.T) {
	for _, b := range bigtables {
		t.Run(b.name, func(t *testing.T) {
			bt := b.connect(t)
			steps := []struct {
				name      string
				retention time.Duration
				want      map[string]string
			}{
				{"create", schema.DefaultRetention, map[string]string{"e": "age() > 400d", "o": "(versions() > 1 || age() > 400d)", "l": lfam, "p": pfam}},
				{"again", schema.DefaultRetention, map[string]string{"e": "age() > 400d", "o": "(versions() > 1 || age() > 400d)", "l": lfam, "p": pfam}},
				{"shorter retention", 30 * 24 * time.Hour, map[string]string{"e": "age() > 30d", "o": "(versions() > 1 || age() > 30d)", "l": lfam, "p": pfam}},
				{"retention in hours", 36 * time.Hour, map[string]string{"e": "age() > 36h", "o": "(versions() > 1 || age() > 36h)", "l": lfam, "p": pfam}},
			}
			for _, s := range steps {
				if err := schema.ApplyBigtable(t.Context(), bt.Admin, bt.Table, s.retention); err != nil {
					t.Fatalf("%s: ApplyBigtable: %v", s.name, err)
				}
				if diff := cmp.Diff(s.want, families(t, bt.Admin, bt.Table)); diff != "" {
					t.Errorf("%s: families mismatch (-want +got):\n%s", s.name, diff)
				}
			}
		})
	}
}

// TestApplyBigtableKeepingLonger: a service applying the schema as it
// starts never shortens the retention of an existing table (setup does,
// as asked), but lengthens it, and says which is in force.
func TestApplyBigtableKeepingLonger(t *testing.T) {
	for _, b := range bigtables {
		t.Run(b.name, func(t *testing.T) {
			bt := b.connect(t)
			day := 24 * time.Hour
			steps := []struct {
				name          string
				apply         func(time.Duration) (time.Duration, error)
				retention     time.Duration
				want, inForce time.Duration
			}{
				{"a new table", keeping(t, bt), 400 * day, 400 * day, 400 * day},
				{"setup lengthens", setup(t, bt), 730 * day, 730 * day, 730 * day},
				{"a start with the default keeps the longer", keeping(t, bt), 400 * day, 730 * day, 730 * day},
				{"a start with a longer one lengthens", keeping(t, bt), 800 * day, 800 * day, 800 * day},
				{"setup shortens", setup(t, bt), 30 * day, 30 * day, 30 * day},
			}
			for _, s := range steps {
				got, err := s.apply(s.retention)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				fams := families(t, bt.Admin, bt.Table)
				if want := fmt.Sprintf("age() > %dd", s.want/day); got != s.inForce || fams["e"] != want {
					t.Errorf("%s: in force %v, events family %q; want %v and %q", s.name, got, fams["e"], s.inForce, want)
				}
			}
		})
	}
}

func keeping(t *testing.T, bt *logtest.Bigtable) func(time.Duration) (time.Duration, error) {
	return func(r time.Duration) (time.Duration, error) {
		return schema.ApplyBigtableKeepingLonger(t.Context(), bt.Admin, bt.Table, r)
	}
}

func setup(t *testing.T, bt *logtest.Bigtable) func(time.Duration) (time.Duration, error) {
	return func(r time.Duration) (time.Duration, error) {
		return r, schema.ApplyBigtable(t.Context(), bt.Admin, bt.Table, r)
	}
}

// TestApplyBigtableExisting brings a table made by hand up to date: the
// missing family is added, the wrong rule replaced, a foreign family and its
// data kept.
func TestApplyBigtableExisting(t *testing.T) {
	for _, b := range bigtables {
		t.Run(b.name, func(t *testing.T) {
			bt := b.connect(t)
			ctx := t.Context()
			err := bt.Admin.CreateTableFromConf(ctx, &bigtable.TableConf{TableID: bt.Table, ColumnFamilies: map[string]bigtable.Family{
				"e": {GCPolicy: bigtable.MaxVersionsPolicy(3)},
				"x": {GCPolicy: bigtable.MaxVersionsPolicy(1)},
			}})
			if err != nil {
				t.Fatal(err)
			}
			m := bigtable.NewMutation()
			m.Set("x", "q", bigtable.Now(), []byte("kept"))
			if err := bt.Client.Open(bt.Table).Apply(ctx, "foreign", m); err != nil {
				t.Fatal(err)
			}
			if err := schema.ApplyBigtable(ctx, bt.Admin, bt.Table, schema.DefaultRetention); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"e": "age() > 400d", "o": "(versions() > 1 || age() > 400d)", "l": lfam, "p": pfam, "x": "versions() > 1"}
			if diff := cmp.Diff(want, families(t, bt.Admin, bt.Table)); diff != "" {
				t.Errorf("families mismatch (-want +got):\n%s", diff)
			}
			row, err := bt.Client.Open(bt.Table).ReadRow(ctx, "foreign")
			if err != nil || len(row["x"]) != 1 || string(row["x"][0].Value) != "kept" {
				t.Errorf("foreign row after ApplyBigtable = %v, %v; want its cell kept", row, err)
			}
		})
	}
}

func TestApplyBigtableInvalidRetention(t *testing.T) {
	bt := logtest.Connect(t, logtest.StartBttest(t))
	for _, r := range []time.Duration{0, -time.Hour, 1500 * time.Millisecond} {
		if err := schema.ApplyBigtable(t.Context(), bt.Admin, bt.Table, r); err == nil {
			t.Errorf("ApplyBigtable(retention %s) succeeded; want an error", r)
		}
	}
	if _, err := bt.Admin.TableInfo(t.Context(), bt.Table); err == nil {
		t.Error("a table was created despite the invalid retention")
	}
}

// TestApplyBigtableDefaultTable runs on bttest only: on a shared emulator
// the default table may be another test's.
func TestApplyBigtableDefaultTable(t *testing.T) {
	bt := logtest.Connect(t, logtest.StartBttest(t))
	if err := schema.ApplyBigtable(t.Context(), bt.Admin, "", schema.DefaultRetention); err != nil {
		t.Fatal(err)
	}
	if got := families(t, bt.Admin, schema.BigtableTable); len(got) != 4 {
		t.Errorf("default table %s has families %v; want e, o, l and p", schema.BigtableTable, got)
	}
}
