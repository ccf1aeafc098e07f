package simulation

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// streamPlan seeds a job's query plan from its identity, so that the jobs
// API draws nothing from the simulation's own streams: answering requests
// never changes the entries.
const streamPlan = 0x5eed_91a7

// plan is a query's execution plan: stages that run one after the other,
// each doing a share of the work in the same share of the run time, so
// that the stages' slot time always adds up to the job's. A stage appears
// in the plan when it starts, so the plan grows as the query runs.
type plan struct {
	stages []planStage
}

type planStage struct {
	name   string
	start  float64 // share of the work done before it starts
	share  float64 // share of the work it does
	inputs int64   // parallel inputs
	rows   int64   // records it reads
	steps  []*bq.ExplainQueryStep
	// Ratios of its workers' time to the longest any worker of the query
	// spent in that activity, on average and at most.
	waitAvg, waitMax, readAvg, readMax, computeAvg, computeMax, writeAvg, writeMax float64
}

var stageKinds = []string{"Join+", "Aggregate+", "Compute+", "Repartition", "Sort+", "Aggregate", "Join"}

// queryPlan returns the job's plan, drawn from its identity alone, so the
// same every time; an open job keeps it once drawn.
func (j *job) queryPlan() *plan {
	switch {
	case j.state == events.StateDone:
		return drawPlan(j)
	case j.qplan == nil:
		j.qplan = drawPlan(j)
	}
	return j.qplan
}

func drawPlan(j *job) *plan {
	h := fnv.New64a()
	h.Write([]byte(j.key.String()))
	r := newRNG(h.Sum64(), streamPlan)
	n := 2 + r.intn(3)
	if j.plan.processed > 1e10 {
		n = 5 + r.intn(6)
	}
	p := &plan{}
	total := 0.0
	for i := range n {
		kind := pick(r, stageKinds)
		switch i {
		case 0:
			kind = "Input"
		case n - 1:
			kind = "Output"
		}
		s := planStage{name: "S" + leftPad(strconv.Itoa(i), 2) + ": " + kind, share: r.uniform(0.5, 2),
			inputs: int64(max(1, min(5000, j.plan.processed/(64*mib)>>uint(i)))),
			rows:   int64(max(1, float64(j.plan.processed)/float64(200*(i+1)))),
			steps:  stageSteps(j, i, kind)}
		s.waitAvg, s.waitMax = ratios(r, 0.01, 0.2)
		s.readAvg, s.readMax = ratios(r, 0.05, 0.5)
		s.computeAvg, s.computeMax = ratios(r, 0.1, 0.7)
		s.writeAvg, s.writeMax = ratios(r, 0.01, 0.3)
		total += s.share
		p.stages = append(p.stages, s)
	}
	start := 0.0
	for i := range p.stages {
		p.stages[i].share /= total
		p.stages[i].start = start
		start += p.stages[i].share
	}
	return p
}

// ratios draws an average ratio in [lo, hi) and a maximum above it, at
// most 1.
func ratios(r *rng, lo, hi float64) (avg, most float64) {
	avg = r.uniform(lo, hi)
	return avg, min(1, avg*r.uniform(1.2, 4))
}

func stageSteps(j *job, i int, kind string) []*bq.ExplainQueryStep {
	out := "__stage" + leftPad(strconv.Itoa(i), 2) + "_output"
	var src string
	if i == 0 && len(j.sql.refs) > 0 {
		src = "FROM " + j.sql.refs[0].dotted()
	} else {
		src = "FROM __stage" + leftPad(strconv.Itoa(max(0, i-1)), 2) + "_output"
	}
	steps := []*bq.ExplainQueryStep{{Kind: "READ", Substeps: []string{"$1, $2, $3", src}}}
	switch {
	case strings.HasPrefix(kind, "Aggregate"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "AGGREGATE", Substeps: []string{"GROUP BY $30 := $1", "$20 := SUM($2)"}})
	case strings.HasPrefix(kind, "Join"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "JOIN", Substeps: []string{"INNER HASH JOIN EACH  WITH EACH ON $1 = $10"}})
	case strings.HasPrefix(kind, "Sort"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "SORT", Substeps: []string{"$2 DESC"}})
	}
	return append(steps, &bq.ExplainQueryStep{Kind: "WRITE", Substeps: []string{"$1, $2", "TO " + out}})
}

// progress is how far the stage is when the job is f done.
func (s *planStage) progress(f float64) float64 {
	return max(0, min(1, (f-s.start)/s.share))
}

// wireStages are the plan's stages begun by the snapshot's moment, each as far
// as it got.
func (p *plan) wireStages(j *job, snap snapshot) []*bq.ExplainQueryStage {
	succeeded := j.state == events.StateDone && j.err == nil
	var out []*bq.ExplainQueryStage
	for i := range p.stages {
		s := &p.stages[i]
		if s.start > snap.share && i > 0 && !succeeded {
			break
		}
		sp := s.progress(snap.share)
		if succeeded {
			sp = 1 // whatever the rounding of the shares
		}
		out = append(out, s.wire(j, i, sp))
	}
	return out
}

func (s *planStage) wire(j *job, i int, sp float64) *bq.ExplainQueryStage {
	w := &bq.ExplainQueryStage{
		Id: int64(i), Name: s.name, Status: stageStatus(j, sp), ParallelInputs: s.inputs,
		CompletedParallelInputs: int64(float64(s.inputs) * sp), SlotMs: int64(float64(j.plan.slotMs) * s.share * sp),
		RecordsRead: int64(float64(s.rows) * sp), RecordsWritten: int64(float64(s.rows) * sp / 4),
		WaitRatioAvg: s.waitAvg, WaitRatioMax: s.waitMax, ReadRatioAvg: s.readAvg, ReadRatioMax: s.readMax,
		ComputeRatioAvg: s.computeAvg, ComputeRatioMax: s.computeMax, WriteRatioAvg: s.writeAvg, WriteRatioMax: s.writeMax,
		Steps: s.steps, StartMs: j.started.Add(time.Duration(s.start * float64(j.runFor))).UnixMilli(),
	}
	if i > 0 {
		w.InputStages = []int64{int64(i - 1)}
	}
	if sp >= 1 {
		w.EndMs = j.started.Add(time.Duration((s.start + s.share) * float64(j.runFor))).UnixMilli()
	}
	return w
}

func stageStatus(j *job, sp float64) string {
	switch {
	case sp >= 1:
		return "COMPLETE"
	case j.state != events.StateDone:
		return "RUNNING"
	case j.cancelling:
		return "CANCELLED"
	}
	return "FAILED"
}

// maxTimeline bounds the samples of a timeline.
const maxTimeline = 100

// timeline samples the job's progress at regular points of its run up to
// the snapshot's moment, where the last sample reports the snapshot's
// numbers: the same samples at every call, more as the job runs.
func (p *plan) timeline(j *job, snap snapshot) []*bq.QueryTimelineSample {
	elapsed := snap.at.Sub(j.started)
	if j.runFor <= 0 || elapsed <= 0 {
		return nil
	}
	step := max(time.Second, j.runFor/maxTimeline).Truncate(time.Millisecond)
	var out []*bq.QueryTimelineSample
	for e := step; e < elapsed; e += step {
		f := float64(e) / float64(j.runFor)
		out = append(out, p.sample(e, f, int64(float64(j.plan.slotMs)*f)))
	}
	last := p.sample(elapsed, snap.share, snap.use.slotMs)
	if j.state == events.StateDone {
		last.ActiveUnits, last.EstimatedRunnableUnits = 0, 0
	}
	return append(out, last)
}

func (p *plan) sample(elapsed time.Duration, f float64, slotMs int64) *bq.QueryTimelineSample {
	var units int64
	for _, s := range p.stages {
		units += s.inputs
	}
	done := int64(float64(units) * f)
	pending := units - done
	return &bq.QueryTimelineSample{
		ElapsedMs: elapsed.Milliseconds(), TotalSlotMs: slotMs, CompletedUnits: done, PendingUnits: pending,
		ActiveUnits: min(pending, 1+pending/4), EstimatedRunnableUnits: pending / 2,
	}
}
