package web

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// contrastPairs are the colour variables the stylesheet draws text or
// controls with, each on the backgrounds it is drawn on, and the WCAG 2.1
// minimum: 4.5:1 for text (1.4.3 AA), 3:1 for borders of controls, progress
// bars and focus rings (1.4.11).
var contrastPairs = []struct {
	fg, bg string
	min    float64
}{
	{"text", "bg", 4.5}, {"text", "surface", 4.5}, {"text", "surface-2", 4.5}, {"text", "hover", 4.5},
	{"text", "accent-weak", 4.5}, {"text", "stale-row", 4.5}, {"text", "tag-bg", 4.5},
	{"muted", "bg", 4.5}, {"muted", "surface", 4.5}, {"muted", "surface-2", 4.5}, {"muted", "hover", 4.5},
	{"muted", "accent-weak", 4.5}, {"muted", "stale-row", 4.5},
	{"accent", "surface", 4.5}, {"accent", "surface-2", 4.5}, {"accent", "hover", 4.5},
	{"accent", "accent-weak", 4.5}, {"accent", "stale-row", 4.5},
	{"accent-text", "accent", 4.5},
	{"run-fg", "run-bg", 4.5}, {"pend-fg", "pend-bg", 4.5}, {"done-fg", "done-bg", 4.5},
	{"stale-fg", "stale-bg", 4.5}, {"stale-fg", "surface", 4.5}, {"run-fg", "surface", 4.5},
	{"bar-fill", "bar-track", 3}, {"bar-fill", "surface", 3}, {"bar-fill", "accent-weak", 3},
	{"border-strong", "surface", 3}, {"focus", "surface", 3}, {"focus", "bg", 3}, {"focus", "accent-weak", 3},
}

func TestColourContrast(t *testing.T) {
	css := string(embeddedFiles(t)["app.css"])
	dark := regexp.MustCompile(`(?s)@media \(prefers-color-scheme: dark\)\s*\{\s*:root\s*\{(.*?)\}`).FindStringSubmatch(css)
	light := regexp.MustCompile(`(?s)^.*?:root\s*\{(.*?)\}`).FindStringSubmatch(css)
	if dark == nil || light == nil {
		t.Fatal("app.css has no light :root block or no dark prefers-color-scheme block")
	}
	for scheme, block := range map[string]string{"light": light[1], "dark": dark[1]} {
		vars := colourVars(block)
		for _, p := range contrastPairs {
			fg, okf := vars[p.fg]
			bg, okb := vars[p.bg]
			if !okf || !okb {
				t.Errorf("%s scheme: --%s or --%s is not a #rrggbb colour", scheme, p.fg, p.bg)
				continue
			}
			if got := contrast(fg, bg); got < p.min {
				t.Errorf("%s scheme: --%s on --%s has contrast %.2f:1, want at least %.1f:1", scheme, p.fg, p.bg, got, p.min)
			}
		}
	}
}

func TestContrastFormula(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#777777", "#ffffff", 4.48}, // the well-known just-failing grey
	}
	for _, tt := range tests {
		if got := contrast(tt.a, tt.b); math.Abs(got-tt.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", tt.a, tt.b, got, tt.want)
		}
	}
}

// colourVars returns the custom properties of a CSS block whose values are
// #rrggbb colours.
func colourVars(block string) map[string]string {
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\s*;`).FindAllStringSubmatch(block, -1) {
		vars[m[1]] = strings.ToLower(m[2])
	}
	return vars
}

// contrast is the WCAG 2.1 contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	channel := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*channel(0) + 0.7152*channel(1) + 0.0722*channel(2)
}
