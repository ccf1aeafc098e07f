package running

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// apiDoc is the part of an OpenAPI document the test reads.
type apiDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]operation       `json:"paths"`
	Components struct{ Parameters map[string]param } `json:"components"`
}

type operation struct {
	Parameters []param `json:"parameters"`
	Ignored    bool    `json:"x-query-parameters-ignored"`
}

type param struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

// endpoint is what a route and an operation must agree on.
type endpoint struct {
	Query, Path []string
	Ignored     bool
}

func documented(t *testing.T) map[string]endpoint {
	t.Helper()
	var doc apiDoc
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	out := map[string]endpoint{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			e := endpoint{Ignored: op.Ignored}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				}
				switch p.In {
				case "query":
					e.Query = append(e.Query, p.Name)
				case "path":
					e.Path = append(e.Path, p.Name)
				case "header":
				default:
					t.Errorf("%s %s: parameter %+v is nowhere", method, path, p)
				}
			}
			slices.Sort(e.Query)
			slices.Sort(e.Path)
			out[strings.ToUpper(method)+" "+path] = e
		}
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func served() map[string]endpoint {
	out := map[string]endpoint{}
	for _, rt := range routes() {
		e := endpoint{Query: slices.Sorted(slices.Values(rt.params)), Ignored: rt.anyParams}
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			e.Path = append(e.Path, m[1])
		}
		slices.Sort(e.Path)
		out[rt.method+" "+rt.path] = e
	}
	return out
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	if diff := gocmp.Diff(documented(t), served()); diff != "" {
		t.Errorf("OpenAPI document vs handler (-documented +served):\n%s", diff)
	}
}

// TestHandlerAcceptsWhatItDeclares holds the handler to the route table the
// document is checked against: every declared parameter is accepted, an
// undeclared one is refused (unless the route ignores parameters).
func TestHandlerAcceptsWhatItDeclares(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	h := asAdmin(p.Handler())
	sample := map[string]string{"state": "running", "type": "query", "label": "a=b", "min_running": "1m", "sort": "created",
		"limit": "5", "snapshot": "false"}
	for _, rt := range routes() {
		path := pathParam.ReplaceAllString(rt.path, "x")
		for _, name := range slices.Concat(rt.params, []string{"undeclared"}) {
			q := url.Values{name: {cmp.Or(sample[name], "v")}}
			if name == "cursor" {
				continue // a cursor must come from a page; TestListBadRequests covers it
			}
			code, unknown := requestParam(t, h, rt.method, path+"?"+q.Encode(), name)
			wantUnknown := name == "undeclared" && !rt.anyParams
			if unknown != wantUnknown {
				t.Errorf("%s %s?%s: %d, refused as unknown: %v, want %v", rt.method, rt.path, q.Encode(), code, unknown, wantUnknown)
			}
		}
	}
}

// requestParam requests target (a stream for at most a moment) and reports
// the status and whether the answer refused name as an unknown parameter.
func requestParam(t *testing.T, h http.Handler, method, target, name string) (int, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, method, target, nil))
	if w.Code != http.StatusBadRequest {
		return w.Code, false
	}
	var pr problem
	if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return w.Code, slices.Contains(pr.Invalid, paramError{Name: name, Reason: "unknown parameter"})
}

func TestOpenAPIServed(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	w := get(t, asAdmin(p.Handler()), "/api/v1/openapi.json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != string(OpenAPI()) {
		t.Errorf("GET /api/v1/openapi.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
