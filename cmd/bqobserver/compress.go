package main

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// compressed wraps the JSON API so that its answers go compressed, with
// zstd or gzip as the client accepts, once they are larger than a packet: a
// page of 100 jobs is about 100 KB of JSON, and analysts open the list over
// the internet. At the fastest levels a page takes well under a millisecond
// to compress. Only JSON is compressed: the event stream is written event by
// event and goes as it is; the web page's assets come compressed already.
func compressed(api http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1400),
		gzhttp.CompressionLevel(1), // gzip's best speed
		gzhttp.ContentTypes([]string{"application/json", "application/problem+json"}),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring the API's compression: %w", err)
	}
	return wrap(api), nil
}
