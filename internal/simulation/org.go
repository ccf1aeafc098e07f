// Package simulation is a simulated Google Cloud organization's BigQuery
// activity: the two things the real world gives the product, BigQuery
// audit-log entries as a log sink delivers them to Pub/Sub, and a BigQuery
// jobs API to poll.
//
// An Org is a set of projects across locations, with users and service
// accounts, reservations and on-demand projects, tables and the SQL that
// reads and writes them. Jobs arrive at a configured rate and live a
// realistic life: they queue when their reservation is busy, run for
// heavy-tailed durations with statistics that grow as they run, and end
// in success, failure with the errors BigQuery reports, or cancellation.
// Every transition is written as audit entries in both formats (legacy
// AuditData and BigQueryAuditMetadata), byte for byte in the shapes Cloud
// Logging writes, and delivered with the imperfections of a real sink:
// duplicates, reordering, delays and lost completions.
//
// The simulation runs in virtual time (Generate: fast and deterministic,
// the same seed gives the same bytes) or in real time with a speed factor
// (Run). JobsAPI serves the BigQuery v2 REST jobs API over the same state,
// so that the official client can list, get and cancel the simulated jobs
// as it would real ones: paging, filters, statistics, query plans and
// timelines that grow as jobs run, and, on demand, the errors BigQuery
// answers with (permission denied, rate limits, backend errors, expired
// jobs); a cancel is logged like a real one. Job and LostCompletions tell
// a test what really happened, whatever the entries and the API showed.
//
// An Org is safe for concurrent use: Generate or Run drive it while the
// jobs API serves requests.
package simulation

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Org is a simulated organization. Create it with New, then drive it with
// Generate (virtual time) or Run (real time), not both.
type Org struct {
	cfg  Config
	rng  *rng // the organization and its activity
	drng *rng // delivery imperfections

	name, emailDomain, admin string
	projects                 []*project
	byID                     map[string]*project
	projectPick              weighted[*project]

	mu    sync.Mutex
	mode  runMode
	clock clock
	// handed is, in real time, the simulated time up to which Run has
	// taken the entries due: the simulation advances at most deliveryStep
	// beyond it, so a delivery that cannot keep up holds the simulation
	// back instead of piling up rendered entries.
	handed    time.Time
	sched     schedule
	out       deliveries
	jobs      map[events.JobKey]*job
	jobSeq    uint64 // numbers jobs in creation order
	lost      []JobTruth
	lastPrune time.Time
	insertSeq uint64
	stats     Stats
	api       *JobsAPI
	wake      chan struct{} // a change the real-time runner must look at
}

// tableRef names a table.
type tableRef struct {
	project, dataset, table string
}

// dotted is the name as events carry it: project.dataset.table.
func (t tableRef) dotted() string { return t.project + "." + t.dataset + "." + t.table }

// path is the name as v2 entries write it.
func (t tableRef) path() string {
	return "projects/" + t.project + "/datasets/" + t.dataset + "/tables/" + t.table
}

func (t tableRef) isZero() bool { return t == tableRef{} }

// catalogTable is a table of a project, with its columns.
type catalogTable struct {
	ref  tableRef
	def  *tableDef
	view bool
}

// project is a Google Cloud project that runs BigQuery jobs.
type project struct {
	id       string
	number   int64
	domain   *domainDef
	location string
	// second is another location a share of its jobs run in, or "".
	second string
	// reservation is the pool its queries run in at its main location;
	// nil for an on-demand project.
	reservation *pool
	onDemand    map[string]*pool
	tables      []catalogTable
	principals  []*principal
	pick        weighted[*principal]
	bucket      string
	// jobs are the project's jobs in creation order, for jobs.list; open
	// are those of them not finished yet.
	jobs, open []*job
}

// role is what a principal does with BigQuery, which decides its jobs.
type role int

const (
	roleAnalyst role = iota
	roleEngineer
	roleDBT
	roleAirflow
	roleBI
	roleLoader
	roleScheduler
)

// principal is an identity that submits jobs.
type principal struct {
	email    string
	user     bool
	role     role
	client   clientKind
	callerIP string
}

// New builds the organization cfg describes. It fails if cfg is invalid.
func New(cfg Config) (*Org, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the simulation: %w", err)
	}
	cfg = cfg.withDefaults()
	o := &Org{
		cfg:  cfg,
		rng:  newRNG(cfg.Seed, streamActivity),
		drng: newRNG(cfg.Seed, streamDelivery),
		jobs: make(map[events.JobKey]*job),
		wake: make(chan struct{}, 1),
	}
	o.build()
	o.api = newJobsAPI(o)
	return o, nil
}

func (o *Org) build() {
	r := o.rng
	o.name = pick(r, orgNames)
	o.emailDomain = o.name + ".example.com"
	o.admin = o.name + "-bq-admin"
	users := o.buildUsers(max(8, 2*o.cfg.Projects))
	reservations := map[string][]*pool{}
	seen := map[string]bool{}
	var weights []weight[*project]
	o.byID = make(map[string]*project, o.cfg.Projects)
	for i := range o.cfg.Projects {
		p := o.buildProject(seen, users, reservations)
		o.projects = append(o.projects, p)
		o.byID[p.id] = p
		// A Zipf-like spread: a few projects run most of the jobs.
		weights = append(weights, weight[*project]{p, 1 / math.Pow(float64(i+1), 0.8)})
	}
	shuffle(r, weights)
	o.projectPick = newWeighted(weights...)
	o.sizePools(weights)
}

func shuffle[T any](r *rng, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

func (o *Org) buildUsers(n int) []*principal {
	r := o.rng
	seen := map[string]bool{}
	var users []*principal
	for len(users) < n {
		local := pick(r, firstNames) + "." + pick(r, lastNames)
		if seen[local] {
			local += fmt.Sprint(r.between(2, 9))
		}
		if seen[local] {
			continue
		}
		seen[local] = true
		users = append(users, &principal{email: local + "@" + o.emailDomain, user: true, callerIP: publicIP(r)})
	}
	return users
}

// publicIP returns an address from the ranges reserved for documentation.
func publicIP(r *rng) string {
	if r.chance(0.15) {
		return fmt.Sprintf("2001:db8:%x:%x::%x", r.intn(0xffff), r.intn(0xffff), r.between(1, 0xfff))
	}
	return fmt.Sprintf("%s.%d", pick(r, []string{"192.0.2", "198.51.100", "203.0.113"}), r.between(1, 254))
}

func (o *Org) buildProject(seen map[string]bool, users []*principal, reservations map[string][]*pool) *project {
	r := o.rng
	p := &project{domain: &domains[r.intn(len(domains))], onDemand: map[string]*pool{}}
	p.id = o.projectID(seen, p.domain.name)
	p.number = int64(r.between(100000000000, 999999999999))
	p.location = locations.pick(r)
	if r.chance(0.1) {
		p.second = locations.pick(r)
		if p.second == p.location {
			p.second = ""
		}
	}
	if r.chance(0.6) {
		p.reservation = o.reservationFor(reservations, p.location)
	}
	p.bucket = p.id + "-landing"
	p.tables = buildTables(r, p)
	o.buildPrincipals(p, users)
	return p
}

// projectID returns an unused project id in one of the shapes
// organizations use: <org>-<domain>-<env>, sometimes with a numeric
// suffix, never longer than the 30 characters Google Cloud allows.
func (o *Org) projectID(seen map[string]bool, domain string) string {
	r := o.rng
	const maxLen = 30
	for {
		id := o.name + "-" + domain + "-" + envNames.pick(r)
		if r.chance(0.3) || seen[id] || len(id) > maxLen {
			suffix := fmt.Sprintf("-%d", r.between(100000, 999999))
			id = strings.TrimRight(id[:min(len(id), maxLen-len(suffix))], "-") + suffix
		}
		if !seen[id] {
			seen[id] = true
			return id
		}
	}
}

func (o *Org) reservationFor(reservations map[string][]*pool, location string) *pool {
	r := o.rng
	if len(reservations[location]) == 0 {
		names := append([]string(nil), reservationNames...)
		shuffle(r, names)
		for _, n := range names[:r.between(1, 3)] {
			full := "projects/" + o.admin + "/locations/" + location + "/reservations/" + n
			reservations[location] = append(reservations[location], &pool{name: full})
		}
	}
	return pick(r, reservations[location])
}

// buildTables lays the project's domain tables out over its datasets.
func buildTables(r *rng, p *project) []catalogTable {
	var tables []catalogTable
	for _, l := range layers {
		if l.dataset != "raw" && l.dataset != "core" && r.chance(0.3) {
			continue
		}
		for i := range p.domain.tables {
			def := &p.domain.tables[i]
			tables = append(tables, catalogTable{ref: tableRef{p.id, l.dataset, l.prefix + def.name}, def: def})
		}
	}
	for i := range p.domain.tables {
		def := &p.domain.tables[i]
		tables = append(tables, catalogTable{ref: tableRef{p.id, "reporting", "v_" + def.name}, def: def, view: true})
	}
	return tables
}

// roleShares say how much of a project's work each kind of principal does.
var roleShares = map[role]float64{
	roleAnalyst: 35, roleEngineer: 15, roleDBT: 15, roleAirflow: 10, roleBI: 15, roleLoader: 5, roleScheduler: 5,
}

func (o *Org) buildPrincipals(p *project, users []*principal) {
	r := o.rng
	for range r.between(2, 8) {
		u := *pick(r, users)
		u.role = roleAnalyst
		if r.chance(0.25) {
			u.role = roleEngineer
		}
		u.client = newWeighted(weight[clientKind]{clientConsole, 6}, weight[clientKind]{clientBQ, 2.5},
			weight[clientKind]{clientPython, 1.5}).pick(r)
		p.principals = append(p.principals, &u)
	}
	for _, sa := range []struct {
		role   role
		name   string
		client clientKind
		share  float64
	}{
		{roleDBT, "dbt-runner", clientPython, 0.6},
		{roleAirflow, "composer-airflow", clientAirflow, 0.5},
		{roleBI, pick(r, []string{"looker-bq", "tableau-reader"}), clientODBC, 0.4},
		{roleLoader, "fivetran-loader", clientLoader, 0.3},
	} {
		if r.chance(sa.share) {
			p.principals = append(p.principals, &principal{email: sa.name + "@" + p.id + ".iam.gserviceaccount.com",
				role: sa.role, client: sa.client, callerIP: "private"})
		}
	}
	if r.chance(0.4) {
		owner := *pick(r, p.principals[:1])
		owner.role, owner.client, owner.callerIP = roleScheduler, clientScheduled, "private"
		p.principals = append(p.principals, &owner)
	}
	p.pick = principalPick(p.principals)
}

// principalPick weighs principals so that each role does its share of the
// project's work, split among the principals that have it.
func principalPick(ps []*principal) weighted[*principal] {
	count := map[role]int{}
	for _, pr := range ps {
		count[pr.role]++
	}
	var ws []weight[*principal]
	for _, pr := range ps {
		ws = append(ws, weight[*principal]{pr, roleShares[pr.role] / float64(count[pr.role])})
	}
	return newWeighted(ws...)
}

// meanJobSeconds estimates how long a job holds its pool, to size
// reservations so that they are sometimes, not always, busy.
const meanJobSeconds = 40

// sizePools sets each reservation's concurrency from the share of the
// organization's jobs it receives.
func (o *Org) sizePools(ws []weight[*project]) {
	total := 0.0
	for _, w := range ws {
		total += w.w
	}
	share := map[*pool]float64{}
	var order []*pool
	for _, w := range ws {
		if res := w.v.reservation; res != nil {
			if _, ok := share[res]; !ok {
				order = append(order, res)
			}
			share[res] += w.w / total
		}
	}
	for _, res := range order {
		expected := o.cfg.Rate * share[res] * meanJobSeconds * o.cfg.DurationScale
		res.limit = max(3, int(math.Ceil(expected*o.rng.uniform(1.3, 2.2))))
	}
}

// onDemandPool is the on-demand capacity of a project in a location.
func (p *project) onDemandPool(location string) *pool {
	if pl := p.onDemand[location]; pl != nil {
		return pl
	}
	pl := &pool{name: "unreserved", limit: 100, onDemand: true}
	p.onDemand[location] = pl
	return pl
}

// anonDataset is the hidden dataset BigQuery writes a principal's query
// results to in a project: stable per project and principal.
func anonDataset(projectID, email string) string {
	h := fnv.New128a()
	h.Write([]byte(projectID + "\x00" + email))
	return "_" + fmt.Sprintf("%x", h.Sum(nil)) + fmt.Sprintf("%08x", fnv32(email))
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// Projects returns the ids of the organization's projects.
func (o *Org) Projects() []string {
	ids := make([]string, len(o.projects))
	for i, p := range o.projects {
		ids[i] = p.id
	}
	return ids
}

// Name returns the organization's name, which prefixes its project ids.
func (o *Org) Name() string { return o.name }

// logName is the audit log every job entry of a project is written to.
func logName(projectID string) string {
	return "projects/" + projectID + "/logs/cloudaudit.googleapis.com%2Fdata_access"
}

// sqlName quotes a table for SQL.
func sqlName(t tableRef) string { return "`" + t.dotted() + "`" }

func lowerSnake(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
