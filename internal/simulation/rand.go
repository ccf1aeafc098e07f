package simulation

import (
	"math"
	"math/rand/v2"
	"time"
)

// rng is the simulation's only source of randomness. Everything it decides
// follows from the seed and the order of the calls, so a run is replayed
// exactly by replaying the calls: the simulation is single-threaded.
type rng struct {
	r *rand.Rand
}

// Streams of one seed: the organization and its activity draw from one,
// delivery imperfections from another, so that switching imperfections off
// leaves the activity itself unchanged.
const (
	streamActivity = 0x5eed_ac71
	streamDelivery = 0x5eed_de11
)

func newRNG(seed, stream uint64) *rng {
	return &rng{r: rand.New(rand.NewPCG(seed, stream))}
}

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return p > 0 && r.r.Float64() < p }

// intn returns a uniform int in [0, n).
func (r *rng) intn(n int) int { return r.r.IntN(n) }

// between returns a uniform int in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.r.IntN(hi-lo+1) }

// uniform returns a uniform float in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.r.Float64() }

// lognormal draws from a log-normal distribution with the given median and
// shape: heavy-tailed, as job durations and sizes are.
func (r *rng) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.r.NormFloat64())
}

// exp draws an exponential waiting time with the given mean.
func (r *rng) exp(mean time.Duration) time.Duration {
	return time.Duration(r.r.ExpFloat64() * float64(mean))
}

// span returns a uniform duration in [lo, hi).
func (r *rng) span(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.r.Int64N(int64(hi-lo)))
}

func pick[T any](r *rng, items []T) T { return items[r.r.IntN(len(items))] }

const (
	hexDigits    = "0123456789abcdef"
	base36Digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// text returns n random characters of alphabet.
func (r *rng) text(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (r *rng) hex(n int) string { return r.text(hexDigits, n) }

// uuid returns a random (version 4) UUID in its canonical form.
func (r *rng) uuid() string {
	var u [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.r.Uint64()
		for k := range 8 {
			u[i+k] = byte(v >> (8 * k))
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	b := make([]byte, 0, 36)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

// weighted picks items with fixed relative weights.
type weighted[T any] struct {
	items []T
	cum   []float64
}

func newWeighted[T any](pairs ...weight[T]) weighted[T] {
	w := weighted[T]{}
	total := 0.0
	for _, p := range pairs {
		total += p.w
		w.items = append(w.items, p.v)
		w.cum = append(w.cum, total)
	}
	return w
}

type weight[T any] struct {
	v T
	w float64
}

func (w weighted[T]) pick(r *rng) T {
	x := r.r.Float64() * w.cum[len(w.cum)-1]
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if w.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return w.items[lo]
}
