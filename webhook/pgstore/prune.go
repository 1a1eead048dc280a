package pgstore

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes the rows that no longer mean anything: claims whose lease
// ran out and done events older than their keep. It deletes in batches of
// at most 10 000 rows, each its own statement, so that a large backlog
// never holds one long transaction, and it skips rows that another
// transaction has locked (they are taken next time). It returns the number
// of rows deleted, also when ctx ends or the database fails part way.
//
// Without pruning the table grows by one row per event; the claims still
// work, since an expired row is taken over as if absent.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, s.q.prune, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("webhook: pgstore: prune: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// Close stops the pruning that [WithPruneInterval] started and waits for
// its goroutine to return (a prune in flight is cancelled). The store keeps
// working otherwise, and the pool stays open: it belongs to the caller.
// Close is safe to call more than once, and without WithPruneInterval.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
			<-s.pruned
		}
	})
	return nil
}

// startPruning runs Prune every interval until Close; each run is bounded
// by the interval, so runs never pile up.
func (s *Store) startPruning(interval time.Duration) {
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.pruned = stop, make(chan struct{})
	go func() {
		defer close(s.pruned)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			runCtx, cancel := context.WithTimeout(ctx, interval)
			n, err := s.Prune(runCtx)
			cancel()
			if s.onPrune != nil && ctx.Err() == nil {
				s.onPrune(n, err)
			}
		}
	}()
}
