package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxIdentifier is PostgreSQL's limit on an identifier (NAMEDATALEN-1);
// longer names would be truncated silently.
const maxIdentifier = 63

// parseTable checks name and returns it as a quoted identifier.
func parseTable(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("%w: %q", ErrInvalidTable, name)
	}
	for _, p := range parts {
		if !isIdentifier(p) {
			return "", fmt.Errorf("%w: %q", ErrInvalidTable, name)
		}
	}
	return pgx.Identifier(parts).Sanitize(), nil
}

// isIdentifier reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and fits.
func isIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifier {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// createTable creates the table and its index unless the table exists, then
// checks that it has the columns the queries use. Replicas starting at the
// same moment serialize on an advisory lock: concurrent CREATE TABLE IF NOT
// EXISTS can fail on PostgreSQL's catalog unique indexes.
//
// The columns: key is the event key as bytes (bytea compares bytes exactly,
// whatever the collation, and holds any string); token identifies the
// holder of a claim, and once done the Complete call that marked it (empty
// for rows written by [Store.Handler]); done tells a
// processed event from a claim; expires is when a claim's lease ends or
// when a done event is forgotten. The index on expires serves [Store.Prune].
func createTable(ctx context.Context, pool *pgxpool.Pool, table string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "resilient/webhook/pgstore "+table); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		_, err := tx.Exec(ctx, `CREATE TABLE `+table+` (
	key     bytea       PRIMARY KEY,
	token   text        NOT NULL,
	done    boolean     NOT NULL,
	expires timestamptz NOT NULL
);
CREATE INDEX ON `+table+` (expires)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("webhook: pgstore: create table %s: %w", table, err)
	}
	_, err = pool.Exec(ctx, "SELECT key, token, done, expires FROM "+table+" LIMIT 0")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" { // undefined_column
		return fmt.Errorf("%w: %s: %w", ErrTableSchema, table, err)
	}
	if err != nil {
		return fmt.Errorf("webhook: pgstore: check table %s: %w", table, err)
	}
	return nil
}
