package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// database is the fleet's share of one PostgreSQL: a schema of its own
// holding River's tables and the effects table, and the pools opened on it.
type database struct {
	dsn    string
	schema string
	admin  *pgxpool.Pool
	pools  []*pgxpool.Pool
}

// openDatabase connects to dsn, creates a fresh schema and migrates River's
// tables into it (what `river migrate-up` does), plus the table the
// processor writes its effects to.
func openDatabase(ctx context.Context, dsn string) (*database, error) {
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := admin.Ping(pingCtx); err != nil {
		admin.Close()
		return nil, err
	}
	d := &database{dsn: dsn, admin: admin,
		schema: fmt.Sprintf("fleet_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{d.schema}.Sanitize()); err != nil {
		admin.Close()
		return nil, err
	}
	pool, err := d.pool(ctx, 2)
	if err != nil {
		d.close()
		return nil, err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: d.schema})
	if err == nil {
		_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err == nil {
		_, err = pool.Exec(ctx, `CREATE TABLE effects (
			event_id text PRIMARY KEY, type text NOT NULL, applied int NOT NULL)`)
	}
	if err != nil {
		d.close()
		return nil, fmt.Errorf("create tables: %w", err)
	}
	return d, nil
}

// pool opens a pool of at most max connections whose search_path is the
// schema; close closes it.
func (d *database) pool(ctx context.Context, max int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(d.dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = max
	cfg.ConnConfig.RuntimeParams["search_path"] = d.schema
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.pools = append(d.pools, p)
	return p, nil
}

// close closes the pools and drops the schema with everything in it.
func (d *database) close() {
	for _, p := range d.pools {
		p.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{d.schema}.Sanitize()+" CASCADE"); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: drop schema:", err)
	}
	d.admin.Close()
}
