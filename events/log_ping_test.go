package events_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bqobserver/bqobserver/events"
)

func testPing(t *testing.T, open opener) {
	f := &faults{}
	bt := open(t, f.dialOptions()...)
	present, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	missing, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table + "-missing"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		log  *events.Log
		call codes.Code
		want string
	}{
		{"table answers", present, codes.OK, "nil"},
		{"table missing", missing, codes.OK, "unavailable"},
		{"Bigtable unreachable", present, codes.Unavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.call, codes.OK)
			defer f.set(codes.OK, codes.OK)
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if got := errorKind(tt.log.Ping(ctx)); got != tt.want {
				t.Errorf("Ping = %s error; want %s", got, tt.want)
			}
		})
	}
}
