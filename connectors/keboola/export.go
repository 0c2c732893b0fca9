package keboola

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ai-data-analyst/analyst/config"
)

// exportParams are the export-async options. Change-time bounds and where filters combine.
type exportParams struct {
	ChangedSince time.Time
	ChangedUntil time.Time
	WhereFilters []config.WhereFilter
	Columns      []string // pins the column order of the header-less export
}

func (p exportParams) form() url.Values {
	f := url.Values{"gzip": {"1"}}
	if !p.ChangedSince.IsZero() {
		f.Set("changedSince", strconv.FormatInt(p.ChangedSince.Unix(), 10))
	}
	if !p.ChangedUntil.IsZero() {
		f.Set("changedUntil", strconv.FormatInt(p.ChangedUntil.Unix(), 10))
	}
	for i, w := range p.WhereFilters {
		key := fmt.Sprintf("whereFilters[%d]", i)
		f.Set(key+"[column]", w.Column)
		f.Set(key+"[operator]", w.Operator)
		for j, v := range w.Values {
			f.Set(fmt.Sprintf("%s[values][%d]", key, j), v)
		}
	}
	for i, col := range p.Columns {
		f.Set(fmt.Sprintf("columns[%d]", i), col)
	}
	return f
}

// startExport asks Keboola to export the table and returns the job id.
func (c *Client) startExport(ctx context.Context, tableID string, p exportParams) (string, error) {
	u := c.apiURL("/v2/storage/tables/"+url.PathEscape(tableID)+"/export-async", nil)
	var job jobJSON
	err := c.do(ctx, call{method: http.MethodPost, url: u, header: c.authHeader(),
		body: p.form().Encode(), read: decodeJSON(u, &job)})
	if err != nil {
		return "", err
	}
	if job.ID == "" {
		return "", errors.New("export-async: the reply names no job")
	}
	c.log.Debug("keboola export started", "table", tableID, "job", string(job.ID))
	return string(job.ID), nil
}

type jobJSON struct {
	ID      flexString `json:"id"`
	Status  string     `json:"status"`
	Results *struct {
		File *struct {
			ID flexString `json:"id"`
		} `json:"file"`
	} `json:"results"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// JobError is an export job that ended in status "error".
type JobError struct {
	Table   string
	JobID   string
	Message string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("export job %s failed: %s", e.JobID, e.Message)
}

// waitJob polls the job with a growing interval until it ends or JobTimeout passes, and returns
// the id of the exported file.
func (c *Client) waitJob(ctx context.Context, tableID, jobID string) (string, error) {
	deadline := time.Now().Add(c.opt.JobTimeout)
	interval := c.opt.PollMin
	u := c.apiURL("/v2/storage/jobs/"+url.PathEscape(jobID), nil)
	status := ""
	for {
		var job jobJSON
		if err := c.do(ctx, call{method: http.MethodGet, url: u, header: c.authHeader(), read: decodeJSON(u, &job)}); err != nil {
			return "", err
		}
		status = job.Status
		switch job.Status {
		case "success":
			if job.Results == nil || job.Results.File == nil || job.Results.File.ID == "" {
				return "", fmt.Errorf("export job %s succeeded without a file", jobID)
			}
			return string(job.Results.File.ID), nil
		case "error":
			msg := "no message"
			if job.Error != nil && job.Error.Message != "" {
				msg = job.Error.Message
			}
			return "", &JobError{Table: tableID, JobID: jobID, Message: msg}
		case "waiting", "processing", "created":
		default:
			return "", fmt.Errorf("export job %s has unknown status %q", jobID, job.Status)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return "", fmt.Errorf("export job %s still %s after %s (job_timeout)", jobID, status, c.opt.JobTimeout)
		}
		if err := sleep(ctx, min(interval, left)); err != nil {
			return "", err
		}
		interval = min(interval*3/2+time.Millisecond, c.opt.PollMax)
	}
}
