package riverqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Limits of [DeadLetters].
const (
	DefaultDeadLetterLimit = 100
	MaxDeadLetterLimit     = 1000
)

// DeadLetter is one event whose job River discarded after its last attempt
// failed: the dead-letter queue is River's discarded state.
type DeadLetter struct {
	// JobID is River's id of the job.
	JobID int64
	// EventID is the event's id; pass it to [Replay].
	EventID string
	// Key is the event's dedupe key.
	Key string
	// Type is the event's type, as in [EventArgs.Type].
	Type string
	// Attempts is how many times the event was tried.
	Attempts int
	// LastError is the error of the last attempt (River's record of it; a
	// panic's value for a panic).
	LastError string
	// DiscardedAt is when the job was dead-lettered.
	DiscardedAt time.Time
}

// DeadLetters returns up to limit dead-lettered events, oldest first (the
// ones River's job cleaner deletes first, after DiscardedJobRetentionPeriod,
// 7 days by default). A limit of zero or less means
// [DefaultDeadLetterLimit]; more than [MaxDeadLetterLimit] is capped.
func DeadLetters(ctx context.Context, client *river.Client[pgx.Tx], limit int) ([]DeadLetter, error) {
	if client == nil {
		return nil, ErrNoClient
	}
	if limit <= 0 {
		limit = DefaultDeadLetterLimit
	}
	limit = min(limit, MaxDeadLetterLimit)
	params := river.NewJobListParams().
		Kinds(Kind).
		States(rivertype.JobStateDiscarded).
		OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderAsc).
		First(limit)
	res, err := client.JobList(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("webhook: list dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(res.Jobs))
	for _, job := range res.Jobs {
		out = append(out, deadLetter(job))
	}
	return out, nil
}

// deadLetter describes a discarded job; args that do not decode leave the
// event fields empty rather than hiding the job.
func deadLetter(job *rivertype.JobRow) DeadLetter {
	var a struct {
		ID   string `json:"id"`
		Key  string `json:"key"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(job.EncodedArgs, &a)
	d := DeadLetter{JobID: job.ID, EventID: a.ID, Key: a.Key, Type: a.Type, Attempts: job.Attempt}
	if n := len(job.Errors); n > 0 {
		d.LastError = job.Errors[n-1].Error
	}
	if job.FinalizedAt != nil {
		d.DiscardedAt = *job.FinalizedAt
	}
	return d
}

// Replay requeues the dead-lettered event eventID (every discarded job
// carrying that id, normally one) for one more attempt, at once: River
// makes the job available again, and a worker processes it once; if that
// attempt fails too, the job goes back to the dead-letter queue. It returns
// [ErrNotDeadLettered] when no such job is discarded, in particular to the
// second of two concurrent Replays of one event, which never queue it
// twice.
func Replay(ctx context.Context, client *river.Client[pgx.Tx], eventID string) error {
	if client == nil {
		return ErrNoClient
	}
	tx, err := beginTx(ctx, client)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Concurrent replays of one event take turns, so the second sees the
	// job no longer discarded instead of making it available once more
	// after the first one's attempt completed it.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", replayLockKey(eventID)); err != nil {
		return fmt.Errorf("webhook: replay %q: lock: %w", eventID, err)
	}
	params := river.NewJobListParams().
		Kinds(Kind).
		States(rivertype.JobStateDiscarded).
		Where("args->>'id' = @event_id", river.NamedArgs{"event_id": eventID}).
		First(MaxDeadLetterLimit)
	res, err := client.JobListTx(ctx, tx, params)
	if err != nil {
		return fmt.Errorf("webhook: replay %q: %w", eventID, err)
	}
	if len(res.Jobs) == 0 {
		return fmt.Errorf("%w: %q", ErrNotDeadLettered, eventID)
	}
	for _, job := range res.Jobs {
		if _, err := client.JobRetryTx(ctx, tx, job.ID); err != nil {
			return fmt.Errorf("webhook: replay %q: job %d: %w", eventID, job.ID, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("webhook: replay %q: commit: %w", eventID, err)
	}
	return nil
}

// replayLockKey is the advisory lock Replay holds for eventID.
func replayLockKey(eventID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("resilient/webhook/riverqueue.Replay\x00"))
	h.Write([]byte(eventID))
	return int64(h.Sum64())
}
