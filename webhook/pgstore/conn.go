package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Pauses between the attempts of a token-checked statement whose
// connection failed: the first retry comes soon (the pool may hand out
// another connection killed at the same moment, which fails at once), then
// they space out for a database that restarts.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = 250 * time.Millisecond
)

// retry runs op until it succeeds, fails other than by a lost connection
// ([connLost]), or ctx ends; without a deadline on ctx, at most attempts
// times. It never waits past ctx: when ctx ends during a pause, the error
// says so and wraps the last failure too. Only statements that may run
// twice go through it: each run of Extend, Complete and Release changes the
// row only while the claim's token holds it, so a second run cannot touch
// another holder's claim.
func retry(ctx context.Context, attempts int, op func() error) error {
	_, bounded := ctx.Deadline()
	pause := firstPause
	for n := 1; ; n++ {
		err := op()
		if err == nil || ctx.Err() != nil || !connLost(err) || (!bounded && n >= attempts) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts, the last: %w)", context.Cause(ctx), n, err)
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// connLost reports whether err, from a statement of this store, says that
// the connection failed, not the statement: the connection could not be
// made, was closed, broke on the wire (reset, EOF), or the server said the
// session or the server is going away ([serverGone]). The statement may or
// may not have run. An error of ctx is not a lost connection.
func connLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return serverGone(pgErr)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// serverGone reports whether the server's error is about the session or
// the server rather than the statement: severity FATAL or PANIC (the
// server ends the session), class 08 (connection exception), 53
// (insufficient resources: disk full, out of memory, too many
// connections), 58 (system error, such as an I/O error), or 57P01 to
// 57P05 (administrator or crash shutdown, cannot connect now, database
// dropped, idle session timeout; not 57014, a cancelled statement).
func serverGone(e *pgconn.PgError) bool {
	severity := e.SeverityUnlocalized
	if severity == "" {
		severity = e.Severity
	}
	switch {
	case severity == "FATAL" || severity == "PANIC":
		return true
	case strings.HasPrefix(e.Code, "08"), strings.HasPrefix(e.Code, "53"), strings.HasPrefix(e.Code, "58"):
		return true
	}
	switch e.Code {
	case "57P01", "57P02", "57P03", "57P04", "57P05":
		return true
	}
	return false
}

// dbFailed tells, for the error process returned in [Store.Handler],
// whether the database failed rather than process: the connection of tx
// is closed (pgx closes it when the server ends the session, or the
// network drops it, whatever process made of the error), or err carries
// the server's word that the session or the server is going away, or a
// connection that could not be made or was closed. The error's text is
// never looked at. A context that ended, the sender's or a timeout of
// process's own, is not a database failure, though pgx closes the
// connection then too; nor is a network error of something else process
// called.
func dbFailed(ctx context.Context, tx pgx.Tx, err error) bool {
	switch {
	case ctx.Err() != nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case tx.Conn().IsClosed():
		return true
	}
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	return errors.As(err, &pgErr) && serverGone(pgErr) ||
		errors.As(err, &connectErr) || errors.Is(err, pgconn.ErrConnClosed)
}
