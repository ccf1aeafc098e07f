package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

// TestAPICompression checks the running service's answers: large JSON goes
// compressed as the client accepts, and decompresses to the plain answer;
// small answers and the event stream go as they are.
func TestAPICompression(t *testing.T) {
	base, stop := runService(t, "--no-simulate")
	defer stop()
	waitReady(t, base)
	plain := fetch(t, base+"/api/v1/openapi.json", "")
	tests := []struct {
		name, path, accept, wantEncoding string
	}{
		{"gzip", "/api/v1/openapi.json", "gzip", "gzip"},
		{"zstd preferred", "/api/v1/openapi.json", "gzip, zstd", "zstd"},
		{"identity", "/api/v1/openapi.json", "", ""},
		{"small answer", "/healthz", "gzip", ""},
		{"event stream", "/api/v1/stream", "gzip", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+tt.path, nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != tt.wantEncoding {
				t.Errorf("Content-Encoding %q; want %q", got, tt.wantEncoding)
			}
			if tt.path != "/api/v1/openapi.json" {
				return
			}
			if diff := cmp.Diff(decoded(t, res), plain); diff != "" {
				t.Errorf("decompressed answer differs from the plain one (-got +want):\n%s", diff)
			}
		})
	}
}

// decoded reads a response body, decompressing it as its Content-Encoding
// says.
func decoded(t *testing.T, res *http.Response) string {
	t.Helper()
	var r io.Reader = res.Body
	switch res.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// fetch returns the body of a plain GET.
func fetch(t *testing.T, url, accept string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", accept)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return decoded(t, res)
}
