package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Run statuses, as the API shows them.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

var (
	bucketRuns   = []byte("state.runs")   // run id -> Run JSON
	bucketStages = []byte("state.stages") // run id / table / stage -> recorded output
)

// ErrNotFound is returned for a run (or other record) that does not exist.
var ErrNotFound = errors.New("not found")

// Run is one sync run over one or more tables.
type Run struct {
	RunID    string      `json:"run_id"`
	Status   string      `json:"status"`
	Trigger  string      `json:"trigger"`
	Created  time.Time   `json:"created"`
	Finished *time.Time  `json:"finished,omitempty"`
	Tables   []*RunTable `json:"tables"`
}

// RunTable is one table's progress through the stages of a run.
type RunTable struct {
	Name     string       `json:"name"`
	Status   string       `json:"status"`
	Rows     int64        `json:"rows"`
	Error    string       `json:"error,omitempty"`
	Warnings []RunWarning `json:"warnings,omitempty"`
	Stages   []*RunStage  `json:"stages"`
}

// RunWarning counts values of a column that did not fit its type and were written as null.
type RunWarning struct {
	Column   string `json:"column"`
	Count    int64  `json:"count"`
	File     string `json:"file,omitempty"`
	FirstRow int64  `json:"first_row"`
	Example  string `json:"example"`
	Reason   string `json:"reason"`
}

// RunStage is one handler's work on a table.
type RunStage struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_s"`
	Attempts int       `json:"attempts,omitempty"`
	Error    string    `json:"error,omitempty"`
	Done     bool      `json:"done"`
}

// Runs keeps run records in the instance's bbolt file.
type Runs struct{ db *bolt.DB }

// NewRuns opens the run records.
func NewRuns(db *bolt.DB) (*Runs, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketStages} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Runs{db: db}, err
}

// Create records a queued run.
func (r *Runs) Create(runID, trigger string, tables []string) (*Run, error) {
	run := &Run{RunID: runID, Status: RunQueued, Trigger: trigger, Created: time.Now().UTC()}
	for _, t := range tables {
		run.Tables = append(run.Tables, &RunTable{Name: t, Status: RunQueued})
	}
	return run, r.db.Update(func(tx *bolt.Tx) error { return putRun(tx, run) })
}

// Get returns a run.
func (r *Runs) Get(runID string) (*Run, error) {
	var run *Run
	err := r.db.View(func(tx *bolt.Tx) error {
		var err error
		run, err = getRun(tx, runID)
		return err
	})
	return run, err
}

// List returns the newest runs first, at most limit (0: all).
func (r *Runs) List(limit int) ([]*Run, error) {
	var runs []*Run
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var run Run
			if err := json.Unmarshal(v, &run); err != nil {
				return fmt.Errorf("run %s: %w", k, err)
			}
			runs = append(runs, &run)
			return nil
		})
	})
	sort.Slice(runs, func(i, j int) bool { return runs[i].Created.After(runs[j].Created) })
	if limit > 0 && len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, err
}

// Update changes a run in one transaction; a run that does not exist yet is created (an event
// can arrive for a run started by another process or before a restart).
func (r *Runs) Update(runID string, fn func(*Run)) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		run, err := getRun(tx, runID)
		if errors.Is(err, ErrNotFound) {
			run, err = &Run{RunID: runID, Status: RunQueued, Created: time.Now().UTC()}, nil
		}
		if err != nil {
			return err
		}
		fn(run)
		run.settle()
		return putRun(tx, run)
	})
}

// Table returns the run's entry for table, adding it if missing.
func (run *Run) Table(name string) *RunTable {
	for _, t := range run.Tables {
		if t.Name == name {
			return t
		}
	}
	t := &RunTable{Name: name, Status: RunQueued}
	run.Tables = append(run.Tables, t)
	return t
}

// Stage returns the table's entry for stage, adding it if missing.
func (t *RunTable) Stage(name string) *RunStage {
	for _, s := range t.Stages {
		if s.Name == name {
			return s
		}
	}
	s := &RunStage{Name: name}
	t.Stages = append(t.Stages, s)
	return s
}

// settle derives the run's status from its tables.
func (run *Run) settle() {
	queued, running, failed := 0, 0, 0
	for _, t := range run.Tables {
		switch t.Status {
		case RunQueued:
			queued++
		case RunRunning:
			running++
		case RunFailed:
			failed++
		}
	}
	switch {
	case running > 0 || (queued > 0 && queued < len(run.Tables)):
		run.Status, run.Finished = RunRunning, nil
	case queued > 0:
		run.Status, run.Finished = RunQueued, nil
	default:
		run.Status = RunSucceeded
		if failed > 0 {
			run.Status = RunFailed
		}
		if run.Finished == nil {
			now := time.Now().UTC()
			run.Finished = &now
		}
	}
}

func getRun(tx *bolt.Tx, runID string) (*Run, error) {
	v := tx.Bucket(bucketRuns).Get([]byte(runID))
	if v == nil {
		return nil, fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	var run Run
	if err := json.Unmarshal(v, &run); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	return &run, nil
}

func putRun(tx *bolt.Tx, run *Run) error {
	v, err := json.Marshal(run)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRuns).Put([]byte(run.RunID), v)
}

// StageOutput returns what a stage recorded for run and table, if it finished before.
func (r *Runs) StageOutput(runID, table, stage string) ([]byte, bool, error) {
	var out []byte
	err := r.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStages).Get(stageKey(runID, table, stage)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, out != nil, err
}

// RecordStageOutput remembers a stage's output so a redelivered message repeats it instead of
// doing the work again.
func (r *Runs) RecordStageOutput(runID, table, stage string, out []byte) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStages).Put(stageKey(runID, table, stage), out)
	})
}

func stageKey(runID, table, stage string) []byte {
	return []byte(runID + "/" + table + "/" + stage)
}

// ActiveTables maps each table that is queued or running in a recent run to that run's id.
func (r *Runs) ActiveTables() (map[string]string, error) {
	runs, err := r.List(200)
	active := map[string]string{}
	for _, run := range runs {
		for _, t := range run.Tables {
			if t.Status == RunQueued || t.Status == RunRunning {
				active[t.Name] = run.RunID
			}
		}
	}
	return active, err
}
