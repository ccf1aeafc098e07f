package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sync"
)

// root is the embedded directory that holds the page and its assets.
const root = "ui"

// pageName is the document served at "/"; assetToken in it is replaced by
// the versioned asset prefix.
const (
	pageName   = "index.html"
	assetToken = "{{assets}}"
)

// contentTypes maps every file extension the page may embed to its media
// type. An embedded file with any other extension fails loading, so a new
// kind of asset cannot be served with a guessed or sniffed type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// errUnknownType is returned when an embedded file has no known media type.
var errUnknownType = errors.New("no content type for asset")

// asset is one file ready to serve: its bytes, a gzip copy when that is
// smaller, its media type and a strong ETag derived from its content.
type asset struct {
	body        []byte
	gzipped     []byte
	contentType string
	etag        string
}

// bundle is everything the handler serves, loaded once from the embedded
// files.
type bundle struct {
	version string
	page    asset
	files   map[string]asset
}

// mustLoad loads the embedded bundle once. The files are part of the binary
// and a test loads them, so failing here means the build itself is broken:
// like template.Must it panics rather than make every caller handle an error
// that cannot happen in a tested build.
func mustLoad() *bundle {
	b, err := loadEmbedded()
	if err != nil {
		panic(fmt.Sprintf("web: loading embedded assets: %v", err))
	}
	return b
}

var loadEmbedded = sync.OnceValues(func() (*bundle, error) { return load(embedded) })

// load reads every file under root, derives the bundle version from their
// contents and fills the asset prefix into the page.
func load(fsys fs.FS) (*bundle, error) {
	raw, err := readAll(fsys)
	if err != nil {
		return nil, err
	}
	page, ok := raw[pageName]
	if !ok {
		return nil, fmt.Errorf("loading assets: %s is missing", pageName)
	}
	b := &bundle{version: version(raw), files: make(map[string]asset, len(raw))}
	for name, body := range raw {
		if name == pageName {
			continue
		}
		if b.files[name], err = newAsset(name, body); err != nil {
			return nil, err
		}
	}
	page = bytes.ReplaceAll(page, []byte(assetToken), []byte("assets/"+b.version))
	b.page, err = newAsset(pageName, page)
	return b, err
}

// readAll returns the content of every regular file under root, keyed by its
// slash-separated path relative to root.
func readAll(fsys fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("reading asset %s: %w", p, err)
		}
		files[p[len(root)+1:]] = body
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	return files, nil
}

// version is a short digest of every file's name and content.
func version(files map[string][]byte) string {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func newAsset(name string, body []byte) (asset, error) {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		return asset{}, fmt.Errorf("loading %s: %w", name, errUnknownType)
	}
	sum := sha256.Sum256(body)
	a := asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	a.gzipped = compress(body)
	return a, nil
}

// compress returns body gzipped, or nil when that would not save at least a
// tenth of it.
func compress(body []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	zw.Write(body)                                           // writes to a bytes.Buffer do not fail
	zw.Close()
	if buf.Len() > len(body)*9/10 {
		return nil
	}
	return buf.Bytes()
}
