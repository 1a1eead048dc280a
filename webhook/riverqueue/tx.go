package riverqueue

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// beginTx opens a transaction on the client's own pool, so that what runs
// in it and River's job rows are in one database (and, with a client
// Schema, one schema) by construction: a completion can never commit on a
// database other than the effects'.
//
// River marks Client.Driver "API is not stable"; this package pins its
// River version in go.mod, and the tests cover every call made here.
func beginTx(ctx context.Context, client *river.Client[pgx.Tx]) (pgx.Tx, error) {
	driver := client.Driver()
	if !driver.PoolIsSet() {
		return nil, ErrNoPool
	}
	execTx, err := driver.GetExecutor().Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook: begin transaction: %w", err)
	}
	return driver.UnwrapTx(execTx), nil
}
