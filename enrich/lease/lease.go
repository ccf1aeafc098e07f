// Package lease shares enrichment's projects among the service's replicas
// so that each project is polled by exactly one replica at a time.
//
// Projects are hashed into Shards shards. Each shard has a lease row in
// the event log's Bigtable table (schema/ROWKEYS.md): one cell holding the
// lease's expiry and holder. A replica takes a free or expired lease, and
// renews or releases its own, with conditional mutations
// (CheckAndMutateRow), which Bigtable applies atomically per row: take
// only if no live lease is there, renew or release only if the lease is
// still its own. There is no other coordination.
//
// Each replica also keeps a member row alive with its own expiry, so that
// every replica knows how many are alive and takes a fair share
// (Shards / members, rounded up). A replica above its share stops polling
// the excess at once but lets those leases lapse rather than release
// them: its polls of them, started before, run until their own deadline,
// and another replica must not take the shards meanwhile. A replica that
// joins gets its share within a lease and a refresh. A replica announces
// itself only once it can poll (Config.Ready), so that the others do not
// leave it a share it would hold without polling.
//
// Timing. A lease lasts Duration (default 15s) and is renewed every
// Duration/4. A holder treats a shard as its own only until a quarter of
// Duration before the expiry it wrote, and stops its polls there, so
// another replica, which takes the lease only after that expiry by its own
// clock, never polls the same project at the same time unless the clocks
// of the two differ by more than Duration/4. A replica that dies stops
// renewing; its leases expire within Duration and are taken by the next
// refresh of another replica, so its projects are polled again within
// 1.25 Duration plus one enrichment interval. A replica that stops cleanly
// releases its leases at once (Release), once its polls have ended.
package lease

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"
)

// Shards is the number of lease shards. It is part of the schema: every
// replica must hash projects alike.
const Shards = 64

// DefaultDuration is how long a lease lasts unless renewed.
const DefaultDuration = 15 * time.Second

// The lease rows' layout (schema/ROWKEYS.md).
const (
	family       = "l"
	qualifier    = "h"
	prefix       = "l#"
	shardPrefix  = prefix + "s#"
	memberPrefix = prefix + "r#"
	expiryDigits = 16
)

// Config configures Leases.
type Config struct {
	// Table is the event log's table.
	Table string
	// Holder names this replica in the lease rows; default the host name
	// and a random suffix. Letters, digits, '-', '_' and '.' only.
	Holder string
	// Duration is how long a lease lasts unless renewed (default 15s).
	Duration time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Ready, if set, says whether this replica can poll yet (its list of
	// open jobs is built): until it first reports true, Run neither
	// announces the replica nor takes a lease, and the other replicas
	// keep every shard.
	Ready func() bool
}

var holderPattern = regexp.MustCompile(`^[-_.a-zA-Z0-9]{1,100}$`)

func (c *Config) setDefaults() {
	if c.Holder == "" {
		c.Holder = defaultHolder()
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// defaultHolder is the host name, cleaned and cut to 60 characters, and a
// random suffix: two replicas on one host differ.
func defaultHolder() string {
	host, _ := os.Hostname()
	host = strings.Trim(unsafeChars.ReplaceAllString(host, "-"), "-")
	host = cmp.Or(host[:min(len(host), 60)], "replica")
	b := make([]byte, 4)
	_, _ = crand.Read(b) // crypto/rand.Read never fails
	return host + "-" + hex.EncodeToString(b)
}

var unsafeChars = regexp.MustCompile(`[^-_.a-zA-Z0-9]+`)

// Validate reports every setting out of range, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Table == "" {
		errs = append(errs, errors.New("no table"))
	}
	if !holderPattern.MatchString(c.Holder) {
		errs = append(errs, fmt.Errorf("holder %q is not 1 to 100 letters, digits, '-', '_' or '.'", c.Holder))
	}
	if c.Duration < 100*time.Millisecond || c.Duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("lease duration must be from 100ms to 10m, not %s", c.Duration))
	}
	return errors.Join(errs...)
}

// Leases are this replica's leases.
type Leases struct {
	tbl *bigtable.Table
	cfg Config

	mu      sync.Mutex
	held    map[int]time.Time // shard → expiry this replica wrote
	lapsing map[int]bool      // shards given up and left to lapse (see release)
}

// New returns the leases of cfg.Holder in client's table cfg.Table. It
// holds none until Refresh.
func New(client *bigtable.Client, cfg Config) (*Leases, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring enrichment leases: %w", err)
	}
	if client == nil {
		return nil, errors.New("configuring enrichment leases: no Bigtable client")
	}
	cfg.setDefaults()
	return &Leases{tbl: client.Open(cfg.Table), cfg: cfg, held: map[int]time.Time{}, lapsing: map[int]bool{}}, nil
}

// Holder is the name this replica holds leases under.
func (l *Leases) Holder() string { return l.cfg.Holder }

// Shard is the lease shard of a project.
func Shard(project string) int { return int(crc32.ChecksumIEEE([]byte(project)) % Shards) }

// Until returns until when this replica may poll project: a quarter of the
// lease's duration before the expiry it wrote. It reports false when the
// replica does not hold project's shard or the hold is too close to its end.
func (l *Leases) Until(project string) (time.Time, bool) {
	l.mu.Lock()
	exp, ok := l.held[Shard(project)]
	l.mu.Unlock()
	until := exp.Add(-l.cfg.Duration / 4)
	return until, ok && l.cfg.Now().Before(until)
}

// Owns reports whether this replica may poll project now.
func (l *Leases) Owns(project string) bool {
	_, ok := l.Until(project)
	return ok
}

// Held returns how many shards this replica holds.
func (l *Leases) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Run refreshes the leases every quarter of their duration until ctx ends,
// from the first tick at which Config.Ready reports true; the caller then
// releases them with Release. Each refresh is given half the duration: a
// Bigtable that does not answer fails it rather than holding it. A failed
// refresh is retried at the next tick, and the leases it could not renew
// lapse on their own; onError, if not nil, hears of each failure.
func (l *Leases) Run(ctx context.Context, onError func(error)) {
	t := time.NewTicker(l.cfg.Duration / 4)
	defer t.Stop()
	ready := l.cfg.Ready == nil
	for {
		if ready = ready || l.cfg.Ready(); ready {
			l.refreshWithin(ctx, onError)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshWithin refreshes within half the leases' duration.
func (l *Leases) refreshWithin(ctx context.Context, onError func(error)) {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Duration/2)
	defer cancel()
	if err := l.Refresh(rctx); err != nil && onError != nil && ctx.Err() == nil {
		onError(err)
	}
}

// Refresh runs one round: it announces this replica, reads every lease,
// renews its own, lets those above its fair share lapse and takes free or
// expired ones up to it. It returns the first failure; the leases it did
// renew or take are held.
func (l *Leases) Refresh(ctx context.Context) error {
	now := l.cfg.Now()
	if err := l.announce(ctx, now); err != nil {
		return err
	}
	rows, members, err := l.read(ctx, now)
	if err != nil {
		return err
	}
	share := (Shards + members - 1) / members
	mine, free := l.sort(rows, now)
	var errs []error
	kept := 0
	for _, s := range mine {
		if kept < share {
			if ok, err := l.renew(ctx, s, now); err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					return errors.Join(errs...) // the rest would fail alike
				}
			} else if ok {
				kept++
			}
			continue
		}
		l.lapse(s)
	}
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	for _, s := range free {
		if kept >= share {
			break
		}
		if ok, err := l.take(ctx, s, now); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
		} else if ok {
			kept++
		}
	}
	return errors.Join(errs...)
}

// lease is a shard's lease as read.
type lease struct {
	holder string
	expiry time.Time
}

// sort splits the shards into those this replica holds, live or expired,
// and those free: no row, or an expired lease of another replica. It
// forgets the shards another replica holds now.
func (l *Leases) sort(rows map[int]lease, now time.Time) (mine, free []int) {
	for s := range Shards {
		r, ok := rows[s]
		switch {
		case ok && r.holder == l.cfg.Holder:
			mine = append(mine, s)
		case !ok || !r.expiry.After(now):
			free = append(free, s)
		default:
			l.drop(s) // someone else holds it
		}
	}
	return mine, free
}

func (l *Leases) drop(shard int) {
	l.mu.Lock()
	delete(l.held, shard)
	delete(l.lapsing, shard)
	l.mu.Unlock()
}

// lapse gives shard up without writing (see release): Until reports
// false for it at once, and Release still releases it.
func (l *Leases) lapse(shard int) {
	l.mu.Lock()
	delete(l.held, shard)
	l.lapsing[shard] = true
	l.mu.Unlock()
}

func (l *Leases) hold(shard int, expiry time.Time) {
	l.mu.Lock()
	l.held[shard] = expiry
	delete(l.lapsing, shard)
	l.mu.Unlock()
}

// announce writes this replica's member row with a fresh expiry.
func (l *Leases) announce(ctx context.Context, now time.Time) error {
	m := bigtable.NewMutation()
	m.DeleteCellsInColumn(family, qualifier)
	m.Set(family, qualifier, bigtable.Now(), []byte(expiryValue(now.Add(l.cfg.Duration))))
	if err := l.tbl.Apply(ctx, memberPrefix+l.cfg.Holder, m); err != nil {
		return fmt.Errorf("announcing replica %s: %w", l.cfg.Holder, err)
	}
	return nil
}

// read returns every shard's lease and how many replicas are alive (this
// one at least).
func (l *Leases) read(ctx context.Context, now time.Time) (map[int]lease, int, error) {
	rows := map[int]lease{}
	members := 0
	var bad error
	err := l.tbl.ReadRows(ctx, bigtable.PrefixRange(prefix), func(r bigtable.Row) bool {
		var v string
		for _, c := range r[family] {
			v = string(c.Value)
		}
		switch key := r.Key(); {
		case strings.HasPrefix(key, memberPrefix):
			if exp, _, err := parseValue(v); err == nil && exp.After(now) {
				members++
			}
		case strings.HasPrefix(key, shardPrefix):
			s, err := strconv.Atoi(strings.TrimPrefix(key, shardPrefix))
			exp, holder, verr := parseValue(v)
			if bad = errors.Join(err, verr); bad != nil {
				bad = fmt.Errorf("lease row %q: %w", key, bad)
				return false
			}
			rows[s] = lease{holder: holder, expiry: exp}
		}
		return true
	}, bigtable.RowFilter(bigtable.ChainFilters(bigtable.FamilyFilter("^"+family+"$"), bigtable.LatestNFilter(1))))
	if err = errors.Join(err, bad); err != nil {
		return nil, 0, fmt.Errorf("reading the enrichment leases: %w", err)
	}
	return rows, max(members, 1), nil
}

// take sets this replica's lease on shard unless a live lease is there.
func (l *Leases) take(ctx context.Context, shard int, now time.Time) (bool, error) {
	exp := now.Add(l.cfg.Duration)
	live := bigtable.ValueRangeFilter([]byte(expiryValue(now.Add(time.Millisecond))), nil)
	matched, err := l.apply(ctx, shard, live, nil, l.set(exp))
	if err != nil {
		return false, fmt.Errorf("taking lease %d: %w", shard, err)
	}
	if !matched {
		l.hold(shard, exp)
	}
	return !matched, nil
}

// renew extends this replica's lease on shard if it is still its own.
func (l *Leases) renew(ctx context.Context, shard int, now time.Time) (bool, error) {
	exp := now.Add(l.cfg.Duration)
	matched, err := l.apply(ctx, shard, l.mine(), l.set(exp), nil)
	if err != nil {
		return false, fmt.Errorf("renewing lease %d: %w", shard, err)
	}
	if matched {
		l.hold(shard, exp)
	} else {
		l.drop(shard)
	}
	return matched, nil
}

// release gives shard up, if it is still this replica's, by setting an
// expiry in the past: only once no poll runs under it (Release). A shard
// given up while polls may run is dropped and left to lapse at the expiry
// it has, which is at least a quarter of the duration after the deadline
// of any poll started under it (see Until), so that no other replica
// takes it while they run.
func (l *Leases) release(ctx context.Context, shard int) error {
	l.drop(shard)
	if _, err := l.apply(ctx, shard, l.mine(), l.set(time.UnixMilli(0)), nil); err != nil {
		return fmt.Errorf("releasing lease %d: %w", shard, err)
	}
	return nil
}

// Release gives up every lease this replica holds and its member row, so
// that others take its projects at their next refresh. Call it once
// Run has returned and the polls under the leases have ended.
func (l *Leases) Release(ctx context.Context) error {
	l.mu.Lock()
	var shards []int
	for s := range l.held {
		shards = append(shards, s)
	}
	for s := range l.lapsing {
		shards = append(shards, s)
	}
	l.mu.Unlock()
	var errs []error
	for _, s := range shards {
		errs = append(errs, l.release(ctx, s))
	}
	m := bigtable.NewMutation()
	m.DeleteRow()
	if err := l.tbl.Apply(ctx, memberPrefix+l.cfg.Holder, m); err != nil {
		errs = append(errs, fmt.Errorf("removing replica %s: %w", l.cfg.Holder, err))
	}
	return errors.Join(errs...)
}

// apply runs a conditional mutation on shard's row and reports whether
// cond matched.
func (l *Leases) apply(ctx context.Context, shard int, cond bigtable.Filter, ifMatched, otherwise *bigtable.Mutation) (bool, error) {
	var matched bool
	filter := bigtable.ChainFilters(bigtable.FamilyFilter("^"+family+"$"), bigtable.ColumnFilter("^"+qualifier+"$"),
		bigtable.LatestNFilter(1), cond)
	m := bigtable.NewCondMutation(filter, ifMatched, otherwise)
	err := l.tbl.Apply(ctx, shardRow(shard), m, bigtable.GetCondMutationResult(&matched))
	return matched, err
}

// mine matches a lease of this replica, live or not.
func (l *Leases) mine() bigtable.Filter {
	return bigtable.ValueFilter("^[0-9]{" + strconv.Itoa(expiryDigits) + "}#" + regexp.QuoteMeta(l.cfg.Holder) + "$")
}

// set replaces the lease with this replica's, expiring at exp.
func (l *Leases) set(exp time.Time) *bigtable.Mutation {
	m := bigtable.NewMutation()
	m.DeleteCellsInColumn(family, qualifier)
	m.Set(family, qualifier, bigtable.Now(), []byte(expiryValue(exp)+"#"+l.cfg.Holder))
	return m
}

func shardRow(shard int) string { return fmt.Sprintf("%s%03d", shardPrefix, shard) }

// expiryValue writes a time as milliseconds since 1970 in expiryDigits
// digits, so that values compare as their times do.
func expiryValue(t time.Time) string {
	return fmt.Sprintf("%0*d", expiryDigits, max(0, t.UnixMilli()))
}

// parseValue reads "<expiry>" or "<expiry>#<holder>".
func parseValue(v string) (time.Time, string, error) {
	ms, holder, _ := strings.Cut(v, "#")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || len(ms) != expiryDigits {
		return time.Time{}, "", fmt.Errorf("value %q is not <%d-digit expiry>[#<holder>]", v, expiryDigits)
	}
	return time.UnixMilli(n), holder, nil
}
