package schema

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/bigquery"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"
)

// fakeBigQuery is BigQuery's REST API for one project, as far as
// ApplyBigQuery and CheckBigQuery use it: it reads and creates datasets and
// tables, and patches tables as BigQuery does (a JSON merge, refused with
// 412 when If-Match is not the table's etag). Unlike the emulator it needs
// nothing installed, and it lets a test change a table between a setup's
// reading and its update, as another setup would.
type fakeBigQuery struct {
	t       *testing.T
	mu      sync.Mutex
	project string
	// datasets and tables (by dataset, then table id) hold the resources.
	datasets map[string]*bq.Dataset
	tables   map[string]map[string]*bq.Table
	etags    int
	// patched lists the table ids of every PATCH received, refused or not.
	patched []string
	// beforePatch, when set, runs when a PATCH arrives, before it is
	// checked and applied: what another setup did meanwhile.
	beforePatch func(id string, patch []byte)
}

// newFakeBigQuery starts a fake holding dataset in location US, and a
// client of it.
func newFakeBigQuery(t *testing.T, project, dataset string) (*fakeBigQuery, *bigquery.Client) {
	t.Helper()
	f := &fakeBigQuery{t: t, project: project, datasets: map[string]*bq.Dataset{}, tables: map[string]map[string]*bq.Table{}}
	f.datasets[dataset] = &bq.Dataset{Location: "US", DatasetReference: &bq.DatasetReference{ProjectId: project, DatasetId: dataset}}
	f.tables[dataset] = map[string]*bq.Table{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	c, err := bigquery.NewClient(t.Context(), project, option.WithEndpoint(srv.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return f, c
}

// applied puts into f's dataset what ApplyBigQuery makes for b: job_versions
// and the views.
func (f *fakeBigQuery) applied(b BigQuery) {
	f.t.Helper()
	js, err := JobVersions().ToJSONFields()
	if err != nil {
		f.t.Fatal(err)
	}
	var fields []*bq.TableFieldSchema
	if err := json.Unmarshal(js, &fields); err != nil {
		f.t.Fatal(err)
	}
	f.put(b.Dataset, &bq.Table{Type: "TABLE", Schema: &bq.TableSchema{Fields: fields},
		TimePartitioning: &bq.TimePartitioning{Type: "DAY", Field: PartitionColumn, ExpirationMs: b.PartitionExpiration.Milliseconds()},
		Clustering:       &bq.Clustering{Fields: ClusteringColumns},
		TableReference:   &bq.TableReference{ProjectId: b.Project, DatasetId: b.Dataset, TableId: JobVersionsTable}})
	for _, v := range views {
		sql, err := b.render(v.sql)
		if err != nil {
			f.t.Fatal(err)
		}
		f.put(b.Dataset, &bq.Table{Type: "VIEW", View: &bq.ViewDefinition{Query: sql}, Description: v.description,
			TableReference: &bq.TableReference{ProjectId: b.Project, DatasetId: b.Dataset, TableId: v.name}})
	}
}

// updates returns the table ids of every PATCH received so far.
func (f *fakeBigQuery) updates() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.patched)
}

// put stores tbl with a new etag.
func (f *fakeBigQuery) put(dataset string, tbl *bq.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.etags++
	tbl.Etag = fmt.Sprintf("etag-%d", f.etags)
	f.tables[dataset][tbl.TableReference.TableId] = tbl
}

// table returns a copy of a stored table, nil when there is none.
func (f *fakeBigQuery) table(dataset, id string) *bq.Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	tbl := f.tables[dataset][id]
	if tbl == nil {
		return nil
	}
	var out bq.Table
	if err := roundTrip(tbl, &out); err != nil {
		f.t.Fatal(err)
	}
	return &out
}

// merge applies a JSON merge patch to a stored table and gives it a new
// etag; the caller holds f.mu.
func (f *fakeBigQuery) merge(dataset, id string, patch []byte) error {
	var have, change map[string]any
	var merged bq.Table
	err := roundTrip(f.tables[dataset][id], &have)
	if err == nil {
		err = json.Unmarshal(patch, &change)
	}
	if err == nil {
		err = roundTrip(mergeJSON(have, change), &merged)
	}
	if err != nil {
		return fmt.Errorf("patching %s: %w", id, err)
	}
	f.etags++
	merged.Etag = fmt.Sprintf("etag-%d", f.etags)
	f.tables[dataset][id] = &merged
	return nil
}

// mergeJSON is RFC 7396's merge: null deletes, objects merge, the rest
// replaces.
func mergeJSON(have, change map[string]any) map[string]any {
	for k, v := range change {
		sub, isObject := v.(map[string]any)
		old, hadObject := have[k].(map[string]any)
		switch {
		case v == nil:
			delete(have, k)
		case isObject && hadObject:
			have[k] = mergeJSON(old, sub)
		default:
			have[k] = v
		}
	}
	return have
}

// roundTrip sets to from from's JSON.
func roundTrip(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// serve answers /…/projects/P/datasets[/D[/tables[/T]]].
func (f *fakeBigQuery) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, path, _ := strings.Cut(r.URL.Path, "/projects/"+f.project+"/datasets")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	body, _ := io.ReadAll(r.Body)
	switch {
	case len(parts) == 1 && parts[0] == "" && r.Method == http.MethodPost:
		f.createDataset(w, body)
	case len(parts) == 1 && r.Method == http.MethodGet:
		replyFound(w, f.datasets[parts[0]])
	case len(parts) == 2 && parts[1] == "tables" && r.Method == http.MethodPost:
		f.createTable(w, parts[0], body)
	case len(parts) == 3 && r.Method == http.MethodGet:
		replyFound(w, f.tables[parts[0]][parts[2]])
	case len(parts) == 3 && r.Method == http.MethodPatch:
		f.patch(w, r, parts[0], parts[2], body)
	default:
		f.t.Errorf("the fake BigQuery does not answer %s %s", r.Method, r.URL.Path)
		replyError(w, http.StatusNotImplemented)
	}
}

func (f *fakeBigQuery) createDataset(w http.ResponseWriter, body []byte) {
	var ds bq.Dataset
	if err := json.Unmarshal(body, &ds); err != nil {
		replyError(w, http.StatusBadRequest)
		return
	}
	id := ds.DatasetReference.DatasetId
	if f.datasets[id] != nil {
		replyError(w, http.StatusConflict)
		return
	}
	f.datasets[id], f.tables[id] = &ds, map[string]*bq.Table{}
	replyFound(w, &ds)
}

func (f *fakeBigQuery) createTable(w http.ResponseWriter, dataset string, body []byte) {
	var tbl bq.Table
	if err := json.Unmarshal(body, &tbl); err != nil || f.datasets[dataset] == nil {
		replyError(w, http.StatusBadRequest)
		return
	}
	if f.tables[dataset][tbl.TableReference.TableId] != nil {
		replyError(w, http.StatusConflict)
		return
	}
	if tbl.Type = "TABLE"; tbl.View != nil {
		tbl.Type = "VIEW"
	}
	f.etags++
	tbl.Etag = fmt.Sprintf("etag-%d", f.etags)
	f.tables[dataset][tbl.TableReference.TableId] = &tbl
	replyFound(w, &tbl)
}

func (f *fakeBigQuery) patch(w http.ResponseWriter, r *http.Request, dataset, id string, body []byte) {
	f.patched = append(f.patched, id)
	if f.beforePatch != nil {
		f.beforePatch(id, body)
	}
	tbl := f.tables[dataset][id]
	switch {
	case tbl == nil:
		replyError(w, http.StatusNotFound)
	case r.Header.Get("If-Match") != "" && r.Header.Get("If-Match") != tbl.Etag:
		replyError(w, http.StatusPreconditionFailed)
	default:
		if err := f.merge(dataset, id, body); err != nil {
			f.t.Error(err)
			replyError(w, http.StatusBadRequest)
			return
		}
		replyFound(w, f.tables[dataset][id])
	}
}

// replyFound writes v as JSON, or 404 when it is nil.
func replyFound[T any](w http.ResponseWriter, v *T) {
	if v == nil {
		replyError(w, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// replyError writes BigQuery's error for status.
func replyError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q}}`, status, http.StatusText(status))
}

// appliedThenEdited is a history as ApplyBigQuery leaves it in a fake
// BigQuery, whose table or view part edit has then changed.
func appliedThenEdited(t *testing.T, part string, edit func(*bq.Table)) (BigQuery, *fakeBigQuery, *bigquery.Client) {
	t.Helper()
	b := BigQuery{Project: "p", Dataset: "d", Location: "US"}
	f, c := newFakeBigQuery(t, b.Project, b.Dataset)
	f.applied(b)
	tb := f.table(b.Dataset, part)
	edit(tb)
	f.put(b.Dataset, tb)
	return b, f, c
}
