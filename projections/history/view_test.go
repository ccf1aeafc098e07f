package history

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// TestJobsViewOnHangingBigQuery queries the jobs view of a BigQuery that
// accepts every request and answers none: the query fails with
// ErrUnavailable once QueryTimeout has passed, saying so, where it waited
// for the caller's context before.
func TestJobsViewOnHangingBigQuery(t *testing.T) {
	var requests atomic.Int64
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	client, err := bigquery.NewClient(t.Context(), "hanging", option.WithEndpoint(srv.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	v := NewJobsView(client, schema.BigQuery{Project: "hanging", Dataset: "history", Location: "US"})
	v.QueryTimeout = 300 * time.Millisecond
	start := time.Now()
	err = v.Jobs(t.Context(), time.Now().Add(-time.Hour), time.Now(), "", func(Row) error { return nil })
	took := time.Since(start)
	if !errors.Is(err, events.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer the query of") {
		t.Errorf("Jobs on a hanging BigQuery = %v; want ErrUnavailable, saying BigQuery did not answer", err)
	}
	if took > 10*time.Second {
		t.Errorf("Jobs on a hanging BigQuery took %s; want about its query timeout of %s", took, v.QueryTimeout)
	}
	if requests.Load() == 0 {
		t.Error("no request reached the hanging BigQuery")
	}
}
