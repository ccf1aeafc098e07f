package bttest

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestGCForgetsColumns: a column that garbage collection emptied and that
// is written again is read once, as it would be after a delete.
func TestGCForgetsColumns(t *testing.T) {
	ctx := context.Background()
	srv, err := NewServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin, err := bigtable.NewAdminClient(ctx, "p", "i", option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTableFromConf(ctx, &bigtable.TableConf{TableID: "t",
		ColumnFamilies: map[string]bigtable.Family{"e": {GCPolicy: bigtable.MaxAgePolicy(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	client, err := bigtable.NewClient(ctx, "p", "i", option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	tbl := client.Open("t")
	old := bigtable.Time(time.Now().Add(-2 * time.Hour)).TruncateToMilliseconds()
	now := bigtable.Time(time.Now()).TruncateToMilliseconds()
	write := func(m *bigtable.Mutation) {
		t.Helper()
		if err := tbl.Apply(ctx, "j#row", m); err != nil {
			t.Fatal(err)
		}
	}
	m := bigtable.NewMutation()
	m.Set("e", "a-old-event", old, []byte("old"))
	m.Set("e", "b-new-event", now, []byte("new"))
	write(m)
	for _, tb := range srv.s.tables {
		tb.gc() // what the collection loop does every minute
	}
	m = bigtable.NewMutation()
	m.Set("e", "a-old-event", old, []byte("old")) // the old event delivered again
	write(m)
	row, err := tbl.ReadRow(ctx, "j#row")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(row["e"]); n != 2 {
		t.Errorf("read %d cells, want 2: %v", n, row["e"])
	}
}
