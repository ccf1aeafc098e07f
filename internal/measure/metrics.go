// Package measure watches a running service from outside, the way an
// operator would: it scrapes its Prometheus metrics and reads its
// process's CPU time and resident memory from /proc, and turns samples
// into rates and quantiles for a report.
package measure

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a /metrics endpoint, by metric family name.
type Metrics map[string]*dto.MetricFamily

// Scrape reads the Prometheus text exposition at url.
func Scrape(ctx context.Context, client *http.Client, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of %s: %w", url, err)
	}
	return Metrics(mfs), nil
}

// Sum is the sum of the values of the counters, gauges or untyped
// metrics of family name whose labels include every pair of labels
// (name, value, name, value…); 0 when there are none.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for _, s := range m.matching(name, labels) {
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		case s.Untyped != nil:
			sum += s.Untyped.GetValue()
		}
	}
	return sum
}

// Histogram is the sum of the histograms of family name whose labels
// include every pair of labels.
func (m Metrics) Histogram(name string, labels ...string) Histogram {
	var h Histogram
	for _, s := range m.matching(name, labels) {
		h = h.add(s.GetHistogram())
	}
	return h
}

func (m Metrics) matching(name string, labels []string) []*dto.Metric {
	mf, ok := m[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, s := range mf.GetMetric() {
		if hasLabels(s, labels) {
			out = append(out, s)
		}
	}
	return out
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Histogram is a cumulative histogram: Counts[i] observations were at most
// Bounds[i]; Count in all.
type Histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
	Sum    float64
}

func (h Histogram) add(p *dto.Histogram) Histogram {
	if p == nil {
		return h
	}
	out := Histogram{Count: h.Count + float64(p.GetSampleCount()), Sum: h.Sum + p.GetSampleSum()}
	for i, b := range p.GetBucket() {
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		c := float64(b.GetCumulativeCount())
		if i < len(h.Counts) {
			c += h.Counts[i]
		}
		out.Counts = append(out.Counts, c)
	}
	return out
}

// Sub is what h observed since earlier, a scrape of the same histogram.
func (h Histogram) Sub(earlier Histogram) Histogram {
	out := Histogram{Bounds: slices.Clone(h.Bounds), Count: h.Count - earlier.Count, Sum: h.Sum - earlier.Sum}
	for i, c := range h.Counts {
		if i < len(earlier.Counts) {
			c -= earlier.Counts[i]
		}
		out.Counts = append(out.Counts, c)
	}
	return out
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) the way Prometheus's
// histogram_quantile does: linearly within the bucket that holds it, from
// 0 for the first bucket. It is NaN without observations, and the highest
// finite bound when the quantile falls in the +Inf bucket.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count <= 0 || len(h.Bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.Count
	lower, below := 0.0, 0.0
	for i, upper := range h.Bounds {
		c := h.Counts[i]
		if c >= rank && c > below {
			if math.IsInf(upper, 1) {
				return lower
			}
			return lower + (upper-lower)*(rank-below)/(c-below)
		}
		if !math.IsInf(upper, 1) {
			lower = upper
		}
		below = c
	}
	return lower
}

// Ceiling is the upper bound of the highest bucket that holds an
// observation: no observation was above it. It is +Inf when one fell in
// the +Inf bucket, and NaN without observations.
func (h Histogram) Ceiling() float64 {
	if h.Count <= 0 {
		return math.NaN()
	}
	for i, c := range h.Counts {
		if c >= h.Count {
			return h.Bounds[i]
		}
	}
	return math.Inf(1) // the +Inf bucket is not in the exposition
}
