package auditlog

import (
	"slices"
	"strings"
)

// tableName is a v1 table reference.
type tableName struct {
	ProjectID string `json:"projectId"`
	DatasetID string `json:"datasetId"`
	TableID   string `json:"tableId"`
}

// String returns the reference as project.dataset.table, or "" for the
// empty reference v1 writes when there is no table.
func (t tableName) String() string {
	if t == (tableName{}) {
		return ""
	}
	return t.ProjectID + "." + t.DatasetID + "." + t.TableID
}

// tablePath normalises a v2 table URI, projects/p/datasets/d/tables/t, to
// p.d.t. Any other form is returned unchanged rather than rejected: it is
// still the best name the entry gives.
func tablePath(uri string) string {
	rest, ok := strings.CutPrefix(uri, "projects/")
	if !ok {
		return uri
	}
	project, rest, ok1 := strings.Cut(rest, "/datasets/")
	dataset, table, ok2 := strings.Cut(rest, "/tables/")
	if !ok1 || !ok2 || strings.Contains(project, "/") || strings.Contains(dataset, "/") {
		return uri
	}
	return project + "." + dataset + "." + table
}

// jobPath is a parsed v2 job name.
type jobPath struct {
	project, location, id string
}

// parseJobPath parses projects/<p>/jobs/<id> and
// projects/<p>/locations/<loc>/jobs/<id>.
func parseJobPath(name string) (jobPath, bool) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return jobPath{}, false
	}
	var p jobPath
	p.project, rest, _ = strings.Cut(rest, "/")
	if loc, ok := strings.CutPrefix(rest, "locations/"); ok {
		p.location, rest, _ = strings.Cut(loc, "/")
	}
	p.id, ok = strings.CutPrefix(rest, "jobs/")
	if !ok || p.project == "" || p.id == "" || strings.Contains(p.id, "/") {
		return jobPath{}, false
	}
	return p, true
}

// jobIDOf returns the job id at the end of a job name, or the name itself
// when it is not a job path (a bare id).
func jobIDOf(name string) string {
	if p, ok := parseJobPath(name); ok {
		return p.id
	}
	return name
}

// tableList collects table names in order, without empty names and
// without duplicates (audit entries have been seen listing a table twice).
type tableList struct {
	names []string
	seen  map[string]bool // built once the list outgrows a linear scan
}

func (l *tableList) add(name string) {
	switch {
	case name == "":
	case l.seen != nil:
		if !l.seen[name] {
			l.seen[name] = true
			l.names = append(l.names, name)
		}
	case slices.Contains(l.names, name):
	case len(l.names) < 16:
		l.names = append(l.names, name)
	default:
		l.seen = make(map[string]bool, 2*len(l.names))
		for _, n := range l.names {
			l.seen[n] = true
		}
		l.add(name)
	}
}

// addV1 adds v1 table references as project.dataset.table.
func (l *tableList) addV1(refs []tableName) {
	for _, r := range refs {
		l.add(r.String())
	}
}

// addV2 adds v2 table URIs as project.dataset.table.
func (l *tableList) addV2(uris []string) {
	for _, u := range uris {
		l.add(tablePath(u))
	}
}
