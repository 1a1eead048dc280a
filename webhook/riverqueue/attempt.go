package riverqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// holdAttempt locks the job's row in tx and checks that it is still
// running this attempt. River's completion (JobCompleteTx) only checks that
// the row is running: an attempt that River gave up on (its rescuer
// requeues jobs stuck in running for RescueStuckJobsAfter, 1 h by default)
// while it was still alive would otherwise commit its effects next to those
// of the attempt that replaced it. With the lock held to the commit, only
// the attempt the row names can commit; any other one fails with
// [ErrAttemptSuperseded] and its effects roll back.
func holdAttempt(ctx context.Context, tx pgx.Tx, schema string, job *river.Job[EventArgs]) error {
	table := pgx.Identifier{"river_job"}
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}
	}
	var state string
	var attempt int
	err := tx.QueryRow(ctx, "SELECT state::text, attempt FROM "+table.Sanitize()+" WHERE id = $1 FOR UPDATE", job.ID).
		Scan(&state, &attempt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: job %d no longer exists", ErrAttemptSuperseded, job.ID)
	case err != nil:
		return fmt.Errorf("webhook: lock job %d: %w", job.ID, err)
	case state != "running" || attempt != job.Attempt:
		return fmt.Errorf("%w: job %d is %s at attempt %d, this is attempt %d",
			ErrAttemptSuperseded, job.ID, state, attempt, job.Attempt)
	}
	return nil
}
