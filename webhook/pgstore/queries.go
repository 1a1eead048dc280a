package pgstore

import "fmt"

// queries holds the SQL of a store, its table name filled in once by [New].
// Every duration is passed in microseconds (the precision of timestamptz)
// and every time is the database's now(), so that replicas whose clocks
// disagree still agree on when a lease ends.
type queries struct {
	// claim answers (false, done) at once if the statement's snapshot
	// holds a live (unexpired) row for $1: a redelivery neither writes nor
	// locks. Otherwise it inserts a row (token $2, done $4, expiring $3 µs
	// from now), or takes over the existing row if it expired, and answers
	// (true, false). When the INSERT finds a live row that the snapshot
	// did not (committed by a concurrent transaction, which the INSERT
	// waits for), nothing is taken and there is no row: the key is held.
	claim string
	// extend, complete and release change the row only if token $2 still
	// holds key $1: not done and unexpired. Zero rows means the lease was
	// lost, whether or not another delivery took the key since. complete
	// puts its call's nonce $4 in place of the token, and also matches a
	// done row holding $4: a second run of one call, after the first one's
	// reply was lost, finds its own work and changes one row again.
	extend   string
	complete string
	release  string
	// state reads the row of $1 with a new snapshot (in READ COMMITTED):
	// whether it is done and unexpired.
	state string
	// prune deletes up to $1 expired rows, skipping rows that others lock.
	prune string
}

func newQueries(table string) queries {
	return queries{
		claim: fmt.Sprintf(`WITH live AS (
	SELECT e.done FROM %[1]s e WHERE e.key = $1 AND e.expires > now()
), taken AS (
	INSERT INTO %[1]s AS e (key, token, done, expires)
	SELECT $1::bytea, $2::text, $4::boolean, now() + $3::bigint * interval '1 microsecond'
	WHERE NOT EXISTS (SELECT FROM live)
	ON CONFLICT (key) DO UPDATE
		SET token = excluded.token, done = excluded.done, expires = excluded.expires
		WHERE e.expires <= now()
	RETURNING 1
)
SELECT true, false FROM taken
UNION ALL
SELECT false, done FROM live`, table),
		extend: fmt.Sprintf(`UPDATE %s SET expires = now() + $3::bigint * interval '1 microsecond'
	WHERE key = $1 AND token = $2 AND NOT done AND expires > now()`, table),
		complete: fmt.Sprintf(`UPDATE %s SET done = true, token = $4, expires = now() + $3::bigint * interval '1 microsecond'
	WHERE key = $1 AND (token = $2 AND NOT done AND expires > now() OR token = $4 AND done)`, table),
		release: fmt.Sprintf(`DELETE FROM %s WHERE key = $1 AND token = $2 AND NOT done AND expires > now()`, table),
		state:   fmt.Sprintf(`SELECT done AND expires > now() FROM %s WHERE key = $1`, table),
		prune: fmt.Sprintf(`DELETE FROM %[1]s WHERE key IN (
	SELECT key FROM %[1]s WHERE expires <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, table),
	}
}
