package measure

import (
	"math"
	"slices"
	"time"
)

// Spread is the minimum, median and maximum of a set of values, and how
// many values they are of.
type Spread struct {
	Min, Median, Max float64
	N                int // the values that were not NaN
}

// SpreadOf returns the spread of vs, ignoring NaNs (N says how many are
// left); all NaN without any. An infinite value counts, as the largest or
// the smallest.
func SpreadOf(vs []float64) Spread {
	var ok []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return Spread{Min: math.NaN(), Median: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(ok)
	mid := len(ok) / 2
	median := ok[mid]
	if len(ok)%2 == 0 {
		median = (ok[mid-1] + ok[mid]) / 2
	}
	return Spread{Min: ok[0], Median: median, Max: ok[len(ok)-1], N: len(ok)}
}

// Percentile returns the p-th percentile (0–100) of ds, nearest rank, or
// -1 without values.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
