package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/webhook"
)

// Store is a [webhook.Store] in a PostgreSQL table, shared by every replica
// of a receiver that uses the same database and table. Each method is one
// SQL statement on the pool (no transaction is held while an event is
// processed), and every lease is measured by the database's clock.
//
// Use it with [webhook.Handler] and [webhook.WithStore] for lease-based
// dedupe, or call [Store.Handler] for transactional exactly-once. Rows
// expire but are not deleted by themselves: call [Store.Prune] now and then,
// or set [WithPruneInterval] and [Store.Close] the store when done. A Store
// is safe for concurrent use; it does not own the pool and never closes it.
type Store struct {
	pool     *pgxpool.Pool
	q        queries // the SQL, table name filled in
	attempts int     // runs of a token-checked statement, without a deadline

	onPrune   func(int64, error)
	stop      context.CancelFunc // ends the pruning goroutine, if any
	pruned    chan struct{}      // closed when the pruning goroutine returned
	closeOnce sync.Once
}

var _ webhook.Store = (*Store)(nil)

// New returns a store in the table named by [WithTable] (default
// [DefaultTable]), which it creates, with an index, if it does not exist.
// ctx bounds only this setup; the store lives until [Store.Close]. It fails
// with [ErrNilPool], [ErrInvalidTable], [ErrTableSchema] or the database's
// error.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	c := config{table: DefaultTable}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if pool == nil {
		return nil, ErrNilPool
	}
	table, err := parseTable(c.table)
	if err != nil {
		return nil, err
	}
	if err := createTable(ctx, pool, table); err != nil {
		return nil, err
	}
	// Enough to go through a pool of connections killed at once and
	// reach a new one.
	attempts := int(pool.Config().MaxConns) + 1
	s := &Store{pool: pool, q: newQueries(table), attempts: attempts, onPrune: c.onPrune}
	if c.pruneInterval > 0 {
		s.startPruning(c.pruneInterval)
	}
	return s, nil
}

// Claim implements [webhook.Store] with one statement: a key with a live
// row (held, or done within its keep) is answered [webhook.InProgress] or
// [webhook.Done] from a read, without writing or locking, so redeliveries
// are cheap; otherwise an INSERT … ON CONFLICT … DO UPDATE … WHERE
// expires <= now() inserts the key, or takes over a row whose lease ran
// out (or a done row older than its keep), with a new random token. A row
// that a concurrent delivery committed in the meantime makes it answer
// InProgress. A lease of zero or less is [ErrInvalidLease].
func (s *Store) Claim(ctx context.Context, key string, lease time.Duration) (webhook.Claim, error) {
	if lease <= 0 {
		return webhook.Claim{}, ErrInvalidLease
	}
	token := rand.Text()
	claimed, done, err := s.claim(ctx, s.pool, key, token, lease, false)
	switch {
	case err != nil:
		return webhook.Claim{}, fmt.Errorf("webhook: pgstore: claim: %w", err)
	case claimed:
		return webhook.Claim{Key: key, Token: token, Result: webhook.Claimed}, nil
	case done:
		return webhook.Claim{Key: key, Result: webhook.Done}, nil
	}
	return webhook.Claim{Key: key, Result: webhook.InProgress}, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// claim runs the claim query on db and reports whether it took the key and,
// if not, whether the key is done. No row (a row committed after the
// statement's snapshot) reads as held and not done.
func (s *Store) claim(ctx context.Context, db querier, key, token string, d time.Duration, done bool) (claimed, isDone bool, err error) {
	err = db.QueryRow(ctx, s.q.claim, []byte(key), token, d.Microseconds(), done).Scan(&claimed, &isDone)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return claimed, isDone, err
}

// Extend implements [webhook.Store]: the lease of c runs for lease from now
// (the database's now). It fails with [webhook.ErrLeaseLost] when c does not
// hold the key (see [Store.Release]), and with [ErrInvalidLease] for a
// lease of zero or less.
//
// Extend, Complete and Release change the row only while c's token holds
// it, so running one twice cannot touch another delivery's claim: when the
// connection fails under one (a killed backend, a reset, a restart), it
// runs again on another connection of the pool, pausing 5 ms, then twice
// as long each time up to 250 ms, until it succeeds, fails otherwise, or
// ctx ends (without a deadline on ctx, at most the pool's MaxConns + 1
// runs). It never runs past ctx.
func (s *Store) Extend(ctx context.Context, c webhook.Claim, lease time.Duration) error {
	if lease <= 0 {
		return ErrInvalidLease
	}
	return s.exec(ctx, "extend", s.q.extend, c, lease.Microseconds())
}

// Complete implements [webhook.Store]: the key is done, and Claim answers
// [webhook.Done] for keep from now (zero or less: not at all); after that
// the key is forgotten. It fails with [webhook.ErrLeaseLost] when c does
// not hold the key (see [Store.Release]). Retried after a lost connection
// (see [Store.Extend]); the row records which call marked it done, so a
// run whose reply was lost after it committed is recognised by the next
// run of the same call, which answers nil, while another Complete of c
// gets ErrLeaseLost.
func (s *Store) Complete(ctx context.Context, c webhook.Claim, keep time.Duration) error {
	return s.exec(ctx, "complete", s.q.complete, c, max(keep, 0).Microseconds(), rand.Text())
}

// Release implements [webhook.Store]: the claim is deleted, so that the
// next Claim of the key wins. It fails with [webhook.ErrLeaseLost] when c
// does not hold the key: its token is not the row's, the key is done, or
// the lease ran out (by the database's clock), whether or not another
// delivery took the key since. Retried after a lost connection (see
// [Store.Extend]); a run whose reply was lost after it committed leaves
// the next run nothing to delete, so Release then reports ErrLeaseLost
// though the claim is released as asked.
func (s *Store) Release(ctx context.Context, c webhook.Claim) error {
	return s.exec(ctx, "release", s.q.release, c)
}

// exec runs a token-checked statement, again after a lost connection; no
// row changed is ErrLeaseLost.
func (s *Store) exec(ctx context.Context, op, query string, c webhook.Claim, args ...any) error {
	if c.Token == "" {
		return webhook.ErrLeaseLost
	}
	args = append([]any{[]byte(c.Key), c.Token}, args...)
	var tag pgconn.CommandTag
	err := retry(ctx, s.attempts, func() error {
		var err error
		tag, err = s.pool.Exec(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("webhook: pgstore: %s: %w", op, err)
	}
	if tag.RowsAffected() == 0 {
		return webhook.ErrLeaseLost
	}
	return nil
}
