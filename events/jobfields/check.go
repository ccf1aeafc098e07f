package jobfields

import (
	"errors"
	"fmt"
	"slices"
)

// Check reports every way in which fields, with HistoryColumns after them,
// is not a table the generator can follow: names that repeat, a scope out of
// order, a kind and a rule that do not go together, a group split in two, a
// column without a type.
func Check(fields []Field) error {
	var errs []error
	seen := map[string]string{}
	unique := func(what, name, field string) {
		if prev, dup := seen[what+" "+name]; dup {
			errs = append(errs, fmt.Errorf("%s and %s share the %s %q", prev, field, what, name))
		}
		seen[what+" "+name] = field
	}
	groups := map[string]int{}
	for i, f := range fields {
		unique("Go name", f.Name, f.Name)
		unique("JSON name", f.JSON, f.Name)
		unique("column", f.Column.Name, f.Name)
		if f.Name == "" || f.JSON == "" || f.Doc == "" {
			errs = append(errs, fmt.Errorf("field %d (%s): a Go name, a JSON name and a Doc are all needed", i, f.Name))
		}
		if i > 0 && f.Scope < fields[i-1].Scope {
			errs = append(errs, fmt.Errorf("%s: scope %d after scope %d; Fields lists key, event, fact, derived", f.Name, f.Scope, fields[i-1].Scope))
		}
		if err := checkRule(fields, i); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
		}
		if f.Group != "" {
			if last, ok := groups[f.Group]; ok && last != i-1 {
				errs = append(errs, fmt.Errorf("%s: group %s is split", f.Name, f.Group))
			}
			groups[f.Group] = i
		}
		if err := checkColumn(f.Column); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
		}
	}
	for g := range groups {
		if !slices.ContainsFunc(Groups, func(x Group) bool { return x.Name == g }) {
			errs = append(errs, fmt.Errorf("group %s is not among Groups", g))
		}
	}
	for _, h := range HistoryColumns {
		unique("column", h.Column.Name, h.Name)
		if h.Name == "" || h.Column.Description == "" || h.Column.Type == "RECORD" {
			errs = append(errs, fmt.Errorf("history column %s: a Go name, a description and a type other than RECORD are all needed", h.Column.Name))
		}
		if err := checkColumn(h.Column); err != nil {
			errs = append(errs, fmt.Errorf("history column %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkRule reports whether field i's kind, scope and fold rule go together.
func checkRule(fields []Field, i int) error {
	f := fields[i]
	ok := true
	switch f.Fold {
	case Identity:
		ok = f.Scope == Key && f.Kind == String
	case Register:
		ok = (f.Scope == Event || f.Scope == Fact) && f.Kind != 0
	case CompleteText:
		ok = f.Scope == Fact && f.Kind == String && i+1 < len(fields) && fields[i+1].Fold == TruncatedFlag
	case TruncatedFlag:
		ok = f.Scope == Fact && f.Kind == Flag && i > 0 && fields[i-1].Fold == CompleteText
	case EarliestEvent, LatestEvent:
		ok = f.Scope == Derived && f.Kind == Time
	case AnyEvent:
		ok = f.Scope == Derived && f.Kind == Flag && f.EventKind != ""
	default:
		ok = false
	}
	switch {
	case !ok:
		return fmt.Errorf("fold rule %d does not fit kind %d in scope %d", f.Fold, f.Kind, f.Scope)
	case f.Scope == Event && f.Kind != State && f.Kind != Error:
		return errors.New("an event carries only its state and error beside its facts")
	case f.Scope != Fact && f.Group != "":
		return errors.New("only facts are grouped")
	case len(f.Enum) > 0 && f.Kind != String && f.Kind != State:
		return errors.New("only strings and states have an Enum")
	}
	return nil
}

func checkColumn(c Column) error {
	if c.Name == "" {
		return errors.New("a column without a name")
	}
	if !slices.Contains([]string{"STRING", "INT64", "FLOAT64", "BOOL", "TIMESTAMP", "RECORD"}, c.Type) {
		return fmt.Errorf("column %s: type %q", c.Name, c.Type)
	}
	if !slices.Contains([]string{"", Required, Repeated}, c.Mode) {
		return fmt.Errorf("column %s: mode %q", c.Name, c.Mode)
	}
	if (c.Type == "RECORD") != (len(c.Fields) > 0) {
		return fmt.Errorf("column %s: a RECORD and only a RECORD has fields", c.Name)
	}
	var errs []error
	for _, sub := range c.Fields {
		errs = append(errs, checkColumn(sub))
	}
	return errors.Join(errs...)
}
