package handlers

import (
	"sync"
	"time"
)

// Progress is the live state of tables being synced in this process, for progress bars and the
// portal. It is not durable: the run records are.
type Progress struct {
	mu     sync.Mutex
	tables map[string]*TableProgress // run id + "/" + table
}

// TableProgress is one table's current stage and counters.
type TableProgress struct {
	Stage      string
	Bytes      int64 // processed so far in this stage
	TotalBytes int64 // 0 when unknown
	Rows       int64
	Started    time.Time
}

// NewProgress returns an empty progress board.
func NewProgress() *Progress { return &Progress{tables: map[string]*TableProgress{}} }

// Set updates a table's progress.
func (p *Progress) Set(runID, table string, fn func(*TableProgress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := runID + "/" + table
	tp, ok := p.tables[k]
	if !ok {
		tp = &TableProgress{Started: time.Now()}
		p.tables[k] = tp
	}
	fn(tp)
}

// Get returns a copy of a table's progress.
func (p *Progress) Get(runID, table string) (TableProgress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp, ok := p.tables[runID+"/"+table]
	if !ok {
		return TableProgress{}, false
	}
	return *tp, true
}
