package enrich

import (
	"cmp"
	"container/heap"
	"context"
	"sync"
)

// queue holds the polls due, at most one a project, and hands them to the
// workers in order: the projects with open jobs first, then the sweep's,
// each least recently polled first. Were each poll a goroutine racing for
// a worker, a sweep of thousands of idle projects would delay the projects
// with open jobs by minutes. A project being polled is not queued again
// until its poll ends, so that two polls of one project never run at once;
// a project queued and not started yet takes the newer task, which knows
// its open jobs better (and moves it ahead of the sweep once it has some).
type queue struct {
	mu      sync.Mutex
	due     taskHeap
	queued  map[string]*queued // by project
	running map[string]bool    // projects being polled
	wake    chan struct{}      // holds a token while tasks may be waiting
}

// queued is a task in the queue, with its place in the heap.
type queued struct {
	task  task
	index int
}

func newQueue() *queue {
	return &queue{queued: map[string]*queued{}, running: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// push queues t, or gives its project's queued task t's place. It
// reports false, and queues nothing, while the project is being polled.
func (q *queue) push(t task) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[t.project] {
		return false
	}
	if it, ok := q.queued[t.project]; ok {
		it.task = t
		heap.Fix(&q.due, it.index)
	} else {
		it := &queued{task: t}
		heap.Push(&q.due, it)
		q.queued[t.project] = it
	}
	q.signal()
	return true
}

// next returns the first task due, marking its project as being polled
// until done. Without a task due it waits for one if wait is set, else
// reports false; it reports false once ctx has ended.
func (q *queue) next(ctx context.Context, wait bool) (task, bool) {
	for ctx.Err() == nil {
		if t, ok := q.take(); ok {
			return t, true
		}
		if !wait {
			return task{}, false
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
		}
	}
	return task{}, false
}

func (q *queue) take() (task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.due.Len() == 0 {
		return task{}, false
	}
	it := heap.Pop(&q.due).(*queued)
	delete(q.queued, it.task.project)
	q.running[it.task.project] = true
	if q.due.Len() > 0 {
		q.signal() // for the next idle worker
	}
	return it.task, true
}

// done records that project's poll ended.
func (q *queue) done(project string) {
	q.mu.Lock()
	delete(q.running, project)
	q.mu.Unlock()
}

// signal wakes a waiting worker, or the next one to wait.
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// taskHeap orders the queued tasks for container/heap: a poll of open jobs
// before a sweep's, then the least recently polled project first.
type taskHeap []*queued

func (h taskHeap) Len() int { return len(h) }

func (h taskHeap) Less(i, j int) bool {
	a, b := &h[i].task, &h[j].task
	if a.sweep != b.sweep {
		return !a.sweep
	}
	return cmp.Or(a.last.Compare(b.last), cmp.Compare(a.project, b.project)) < 0
}

func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *taskHeap) Push(x any) {
	it := x.(*queued)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *taskHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
