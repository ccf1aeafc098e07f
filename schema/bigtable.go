package schema

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/bigtable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultRetention is how long the event log keeps an event, counted from
// when it happened. It outlives the 180 days of BigQuery's
// INFORMATION_SCHEMA job views, so the history reaches further back.
const DefaultRetention = 400 * 24 * time.Hour

// bigtableJSON defines the event-log table: its default name and its column
// families with their garbage-collection rules. ROWKEYS.md describes the rows.
//
//go:embed bigtable.json
var bigtableJSON []byte

// BigtableTable is the default name of the event-log table, from
// bigtable.json.
var BigtableTable = bigtableDef.Table

var bigtableDef = mustParse("bigtable.json", parseBigtable, bigtableJSON)

// bigtableSpec is the shape of bigtable.json.
type bigtableSpec struct {
	Table    string       `json:"table"`
	Families []familySpec `json:"families"`
}

type familySpec struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	GC          gcSpec `json:"gc"`
}

// gcSpec is one garbage-collection rule: exactly one of its fields is set.
// MaxAge is "retention" (the age ApplyBigtable is given) or a Go duration.
type gcSpec struct {
	MaxAge       string   `json:"max_age,omitempty"`
	MaxVersions  int      `json:"max_versions,omitempty"`
	Union        []gcSpec `json:"union,omitempty"`
	Intersection []gcSpec `json:"intersection,omitempty"`
}

// family is a column family with its policy resolved for one retention.
type family struct {
	name   string
	policy bigtable.GCPolicy
}

// mustParse parses a definition embedded in the binary with parse. It is
// data compiled into the binary, checked by the package's tests, so a
// failure is a build defect.
func mustParse[T any](file string, parse func([]byte) (T, error), b []byte) T {
	v, err := parse(b)
	if err != nil {
		panic(fmt.Sprintf("schema: embedded %s: %v", file, err))
	}
	return v
}

// decodeStrict decodes a JSON definition into v, refusing members v has
// no field for.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	return nil
}

func parseBigtable(b []byte) (bigtableSpec, error) {
	var s bigtableSpec
	if err := decodeStrict(b, &s); err != nil {
		return s, err
	}
	if s.Table == "" || len(s.Families) == 0 {
		return s, errors.New("a table name and at least one family are required")
	}
	_, err := s.families(DefaultRetention)
	return s, err
}

// families resolves every family's rule for retention.
func (s bigtableSpec) families(retention time.Duration) ([]family, error) {
	fams := make([]family, 0, len(s.Families))
	var errs []error
	for _, f := range s.Families {
		p, err := f.GC.policy(retention)
		if err != nil {
			errs = append(errs, fmt.Errorf("family %q: %w", f.Name, err))
		}
		fams = append(fams, family{name: f.Name, policy: p})
	}
	return fams, errors.Join(errs...)
}

func (g gcSpec) policy(retention time.Duration) (bigtable.GCPolicy, error) {
	set := 0
	for _, ok := range []bool{g.MaxAge != "", g.MaxVersions != 0, g.Union != nil, g.Intersection != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("a gc rule needs exactly one of max_age, max_versions, union, intersection; %d are set", set)
	}
	switch {
	case g.MaxAge != "":
		return maxAge(g.MaxAge, retention)
	case g.MaxVersions != 0:
		if g.MaxVersions < 0 {
			return nil, fmt.Errorf("max_versions %d is negative", g.MaxVersions)
		}
		return bigtable.MaxVersionsPolicy(g.MaxVersions), nil
	case g.Union != nil:
		subs, err := policies(g.Union, retention)
		return bigtable.UnionPolicy(subs...), err
	default:
		subs, err := policies(g.Intersection, retention)
		return bigtable.IntersectionPolicy(subs...), err
	}
}

func policies(specs []gcSpec, retention time.Duration) ([]bigtable.GCPolicy, error) {
	if len(specs) == 0 {
		return nil, errors.New("a union or intersection needs at least one rule")
	}
	out := make([]bigtable.GCPolicy, len(specs))
	for i, s := range specs {
		p, err := s.policy(retention)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// maxAge resolves a max_age value. Bigtable keeps ages in whole seconds, so
// anything finer is refused rather than silently rounded.
func maxAge(v string, retention time.Duration) (bigtable.GCPolicy, error) {
	d := retention
	if v != "retention" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("max_age %q is neither \"retention\" nor a duration", v)
		}
	}
	if d < time.Second || d%time.Second != 0 {
		return nil, fmt.Errorf("max age %s is not a positive whole number of seconds", d)
	}
	return bigtable.MaxAgePolicy(d), nil
}

// ApplyBigtable creates the event-log table (BigtableTable when table is
// empty) with the column families and garbage-collection rules of
// bigtable.json, events kept for retention. On an existing table it adds
// missing families and updates rules that differ, so running it again
// changes nothing and running it with another retention changes only the
// rules. Families it does not define are left alone, data included.
func ApplyBigtable(ctx context.Context, admin *bigtable.AdminClient, table string, retention time.Duration) error {
	if table == "" {
		table = BigtableTable
	}
	want, err := bigtableDef.families(retention)
	if err != nil {
		return fmt.Errorf("applying the schema of Bigtable table %s: %w", table, err)
	}
	if err := ensureTable(ctx, admin, table, want); err != nil {
		return fmt.Errorf("applying the schema of Bigtable table %s: %w", table, err)
	}
	return nil
}

// ApplyBigtableKeepingLonger is ApplyBigtable for a service that applies
// the schema as it starts (--auto-create): it never shortens the retention
// of an existing table, whose events older than the new retention would be
// collected for good, but keeps the longer one, and returns the retention
// in force. Only ApplyBigtable (bqobserver setup) shortens it, as asked.
func ApplyBigtableKeepingLonger(ctx context.Context, admin *bigtable.AdminClient, table string, retention time.Duration) (time.Duration, error) {
	if table == "" {
		table = BigtableTable
	}
	info, err := admin.TableInfo(ctx, table)
	switch {
	case err == nil:
		if have, ok := retentionOf(info); ok && have > retention {
			retention = have
		}
	case status.Code(err) != codes.NotFound:
		return 0, fmt.Errorf("applying the schema of Bigtable table %s: reading the table: %w", table, err)
	}
	return retention, ApplyBigtable(ctx, admin, table, retention)
}

// eventsFamily is the family of events (bigtable.json), which keeps them
// for the retention.
const eventsFamily = "e"

// retentionOf returns the retention of an existing table: the max age of
// the events' family.
func retentionOf(info *bigtable.TableInfo) (time.Duration, bool) {
	for _, f := range info.FamilyInfos {
		if f.Name == eventsFamily {
			return maxAgeIn(f.FullGCPolicy)
		}
	}
	return 0, false
}

// maxAgeIn returns the first max age of a garbage-collection rule.
func maxAgeIn(p bigtable.GCPolicy) (time.Duration, bool) {
	switch p := p.(type) {
	case bigtable.MaxAgeGCPolicy:
		return time.Duration(p), true
	case bigtable.UnionGCPolicy:
		return firstMaxAge(p.Children)
	case bigtable.IntersectionGCPolicy:
		return firstMaxAge(p.Children)
	}
	return 0, false
}

func firstMaxAge(ps []bigtable.GCPolicy) (time.Duration, bool) {
	for _, c := range ps {
		if d, ok := maxAgeIn(c); ok {
			return d, true
		}
	}
	return 0, false
}

func ensureTable(ctx context.Context, admin *bigtable.AdminClient, table string, want []family) error {
	info, err := admin.TableInfo(ctx, table)
	if status.Code(err) == codes.NotFound {
		err = createTable(ctx, admin, table, want)
		if status.Code(err) != codes.AlreadyExists {
			return err
		}
		// Another setup created it meanwhile: bring that one up to date.
		info, err = admin.TableInfo(ctx, table)
	}
	if err != nil {
		return fmt.Errorf("reading the table: %w", err)
	}
	return ensureFamilies(ctx, admin, table, info, want)
}

func createTable(ctx context.Context, admin *bigtable.AdminClient, table string, want []family) error {
	conf := &bigtable.TableConf{TableID: table, ColumnFamilies: make(map[string]bigtable.Family, len(want))}
	for _, f := range want {
		conf.ColumnFamilies[f.name] = bigtable.Family{GCPolicy: f.policy}
	}
	if err := admin.CreateTableFromConf(ctx, conf); err != nil {
		return fmt.Errorf("creating the table: %w", err)
	}
	return nil
}

func ensureFamilies(ctx context.Context, admin *bigtable.AdminClient, table string, info *bigtable.TableInfo, want []family) error {
	have := make(map[string]string, len(info.FamilyInfos))
	for _, f := range info.FamilyInfos {
		have[f.Name] = f.GCPolicy
	}
	for _, f := range want {
		got, ok := have[f.name]
		if !ok {
			err := admin.CreateColumnFamilyWithConfig(ctx, table, f.name, bigtable.Family{GCPolicy: f.policy})
			if err == nil {
				continue
			}
			if status.Code(err) != codes.AlreadyExists {
				return fmt.Errorf("creating column family %s: %w", f.name, err)
			}
		} else if got == f.policy.String() {
			continue
		}
		if err := admin.SetGCPolicy(ctx, table, f.name, f.policy); err != nil {
			return fmt.Errorf("setting the garbage-collection rule of column family %s to %s: %w", f.name, f.policy, err)
		}
	}
	return nil
}
