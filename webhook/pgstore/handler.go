package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/resilient-go/resilient/webhook"
)

// Handler returns an http.Handler that processes each event exactly once,
// transactionally: in one transaction it records the event as done and
// calls process with that transaction, then commits. What process writes
// through tx and the record of the event commit together or not at all:
// an error, a panic, a crash or a lost connection leaves no trace, and the
// redelivery processes the event; a committed event is never processed
// again (for the Keep of [webhook.WithKeep], 72 h by default, after which
// its row expires and [Store.Prune] deletes it). No lease is involved.
//
// The responses are those of [webhook.Handler], from the same
// [webhook.Receiver]: 405, 413, 408, 400, 401 before anything is processed
// (500 if v or process is nil); 200
// for an event processed before, without calling process; 200 after
// process returned nil and the transaction committed; 500 when process
// returned an error (or the transaction was aborted by a failed statement
// that process ignored); 503 with Retry-After when the database fails or
// does not answer within the StoreTimeout of [webhook.WithStoreTimeout],
// also under process: when process returns an error and the transaction's
// connection is closed (a killed backend, a restart, a dropped network),
// or the error is the server's word that the session or the server is
// going away (severity FATAL, or SQLSTATE class 08, 53, 58 or 57P01 to
// 57P05), the database failed, not the event. A context that ended is not
// a database failure: a process whose own timeout ran out gets 500.
// A delivery of an event whose transaction is open elsewhere waits for it
// (200 if it commits, processes if it rolls back) up to half the
// StoreTimeout, then gets 409 and is retried by its sender.
//
// process must not call tx.Commit or tx.Rollback (they return
// [ErrTxOwned]); nested transactions (tx.Begin, savepoints) are fine. It
// runs in READ COMMITTED with the request's context. A panic in process
// rolls back and is re-raised, as net/http expects of a handler (the same
// as [webhook.Handler]). Database errors (begin, insert, commit, rollback
// on a live connection, the database failing under process), and a commit
// turned into a rollback by a statement that failed in process, go to
// [webhook.WithErrorHandler], unless the sender hung up.
// [webhook.WithStore] and [webhook.WithLease] do not apply.
func (s *Store) Handler(v webhook.Verifier, process func(ctx context.Context, tx pgx.Tx, e webhook.Event) error, opts ...webhook.HandlerOption) http.Handler {
	rc := webhook.NewReceiver(v, opts...)
	set := rc.Settings()
	// The wait for another delivery's transaction is bounded by
	// lock_timeout, shorter than the statement's deadline so that it ends
	// as a lock timeout (409), not as a dead database (503). SET LOCAL
	// would hold for process's statements too: the previous value is saved
	// and restored right after the dedupe row is in.
	wait := max(set.StoreTimeout/2, time.Millisecond)
	begin := fmt.Sprintf("BEGIN ISOLATION LEVEL READ COMMITTED; "+
		"SELECT set_config('resilient.lock_timeout', current_setting('lock_timeout'), true), "+
		"set_config('lock_timeout', '%dms', true)", wait.Milliseconds())
	return &txHandler{s: s, rc: rc, process: process, set: set, begin: pgx.TxOptions{BeginQuery: begin}}
}

type txHandler struct {
	s       *Store
	rc      *webhook.Receiver
	process func(context.Context, pgx.Tx, webhook.Event) error
	set     webhook.HandlerSettings
	begin   pgx.TxOptions
}

// restoreLockTimeout undoes the lock_timeout of the begin query.
const restoreLockTimeout = "SELECT set_config('lock_timeout', current_setting('resilient.lock_timeout'), true)"

// outcome of opening the transaction of one delivery.
type outcome int

const (
	fresh     outcome = iota // the dedupe row is in, uncommitted: process
	processed                // done before: 200
	busy                     // another delivery holds it: 409
)

func (h *txHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.process == nil {
		http.Error(w, "webhook handler not configured", http.StatusInternalServerError)
		return
	}
	e, ok := h.rc.Receive(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	tx, out, err := h.open(ctx, e.Key())
	switch {
	case err != nil:
		h.report(ctx, e, err)
		h.rc.Unavailable(w)
		return
	case out == processed:
		w.WriteHeader(http.StatusOK)
		return
	case out == busy:
		http.Error(w, "event in progress", http.StatusConflict)
		return
	}
	status, err := h.run(ctx, tx, e)
	switch {
	case status == http.StatusServiceUnavailable:
		h.report(ctx, e, err)
		h.rc.Unavailable(w)
	case status != http.StatusOK:
		http.Error(w, "processing failed", status)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// open begins the transaction and inserts the dedupe row as done, all
// within StoreTimeout. Unless the outcome is fresh, the transaction is
// rolled back already.
func (h *txHandler) open(ctx context.Context, key string) (pgx.Tx, outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, h.set.StoreTimeout)
	defer cancel()
	tx, err := h.s.pool.BeginTx(ctx, h.begin)
	if err != nil {
		return nil, 0, fmt.Errorf("webhook: pgstore: begin: %w", err)
	}
	out, err := h.mark(ctx, tx, key)
	if err != nil || out != fresh {
		_ = tx.Rollback(ctx)
	}
	return tx, out, err
}

// mark inserts the dedupe row in tx, restores lock_timeout, and tells what
// it found. A committed live row answers at once, without a lock. A row
// another transaction is writing makes the INSERT wait (up to
// lock_timeout: busy) for that transaction's end: rolled back, the INSERT
// goes on (fresh); committed, the claim query cannot see it in its
// snapshot, so one more read with a fresh snapshot tells done from held
// (the row of a lease-based claim in the same table is held too).
func (h *txHandler) mark(ctx context.Context, tx pgx.Tx, key string) (outcome, error) {
	b := &pgx.Batch{}
	var claimed, done bool
	b.Queue(h.s.q.claim, []byte(key), "", h.set.Keep.Microseconds(), true).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&claimed, &done)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	b.Queue(restoreLockTimeout)
	err := tx.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "55P03": // lock_not_available
		return busy, nil
	case err != nil:
		return 0, fmt.Errorf("webhook: pgstore: insert event: %w", err)
	case claimed:
		return fresh, nil
	case done:
		return processed, nil
	}
	err = tx.QueryRow(ctx, h.s.q.state, []byte(key)).Scan(&done)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return busy, nil
	case err != nil:
		return 0, fmt.Errorf("webhook: pgstore: read event: %w", err)
	case done:
		return processed, nil
	}
	return busy, nil
}

// run calls process in tx and commits; it answers the status of the
// delivery and, for 503, the database's error. The transaction is rolled
// back unless it committed, also when process panics.
func (h *txHandler) run(ctx context.Context, tx pgx.Tx, e webhook.Event) (status int, err error) {
	committed := false
	defer func() {
		if !committed {
			h.rollback(ctx, tx, e)
		}
	}()
	if err := h.process(ctx, ownedTx{tx}, e); err != nil {
		if dbFailed(ctx, tx, err) {
			return http.StatusServiceUnavailable, fmt.Errorf("webhook: pgstore: database failed under process: %w", err)
		}
		return http.StatusInternalServerError, err
	}
	cctx, cancel := context.WithTimeout(ctx, h.set.StoreTimeout)
	defer cancel()
	err = tx.Commit(cctx)
	switch {
	case errors.Is(err, pgx.ErrTxCommitRollback):
		// A statement of process failed and process went on: nothing
		// was committed, the event is not done.
		h.rc.ReportError(ctx, e, fmt.Errorf("webhook: pgstore: process ignored a failed statement: %w", err))
		return http.StatusInternalServerError, err
	case err != nil:
		// Maybe committed, maybe not: the redelivery finds out.
		return http.StatusServiceUnavailable, fmt.Errorf("webhook: pgstore: commit: %w", err)
	}
	committed = true
	return http.StatusOK, nil
}

// rollback ends tx within StoreTimeout and the request's context. If that
// context is over, pgx closes the connection instead, which ends the
// transaction on the server all the same; so does a connection that died
// before or during the rollback, which is not reported again.
func (h *txHandler) rollback(ctx context.Context, tx pgx.Tx, e webhook.Event) {
	ctx, cancel := context.WithTimeout(ctx, h.set.StoreTimeout)
	defer cancel()
	err := tx.Rollback(ctx)
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) && ctx.Err() == nil && !tx.Conn().IsClosed() {
		h.rc.ReportError(ctx, e, fmt.Errorf("webhook: pgstore: rollback: %w", err))
	}
}

// report hands a database error to the error handler, unless it is the
// sender hanging up.
func (h *txHandler) report(ctx context.Context, e webhook.Event, err error) {
	if ctx.Err() == nil {
		h.rc.ReportError(ctx, e, err)
	}
}

// ownedTx is the transaction as process sees it: everything but ending it.
type ownedTx struct{ pgx.Tx }

// Commit refuses: the handler commits after process returns nil.
func (ownedTx) Commit(context.Context) error { return ErrTxOwned }

// Rollback refuses: process returns an error to roll back.
func (ownedTx) Rollback(context.Context) error { return ErrTxOwned }
