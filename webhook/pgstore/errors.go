package pgstore

import "errors"

// Errors of this package, for errors.Is. Database errors are returned wrapped
// (with %w) in an error that names the operation, so that errors.As finds the
// *pgconn.PgError underneath.
var (
	// ErrInvalidTable: the name given to [WithTable] is not a plain SQL
	// identifier (letters, digits and '_', not starting with a digit, at most
	// 63 bytes), optionally qualified by a schema ("schema.table").
	ErrInvalidTable = errors.New("webhook: pgstore: invalid table name")
	// ErrNilPool: [New] was given no pool.
	ErrNilPool = errors.New("webhook: pgstore: nil pool")
	// ErrInvalidLease: Claim or Extend was asked for a lease of zero or less,
	// which would end before it began.
	ErrInvalidLease = errors.New("webhook: pgstore: lease must be positive")
	// ErrTableSchema: the table exists but lacks the columns this package
	// needs (key, token, done, expires); choose another name with [WithTable].
	ErrTableSchema = errors.New("webhook: pgstore: table has an unexpected schema")
	// ErrTxOwned is returned by Commit and Rollback of the pgx.Tx handed to
	// the process function of [Store.Handler]: the handler owns the
	// transaction. Return an error from process to roll it back.
	ErrTxOwned = errors.New("webhook: pgstore: the transaction is committed or rolled back by the handler")
)
