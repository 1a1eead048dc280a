package soak_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// killEvery is how often the killer cuts the receivers' connections.
const killEvery = 2 * time.Second

// kill cuts every connection of the receivers' pools and clients every
// killEvery until until: PostgreSQL backends whose application_name is
// h.app (pg_terminate_backend), Redis clients named h.redisName (CLIENT
// KILL ID). Connections of anyone else, the test's own admin connections
// included, are left alone.
func (h *hooks) kill(ctx context.Context, t *testing.T, until time.Time) {
	tick := time.NewTicker(killEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if time.Now().After(until) {
			return
		}
		var n int64
		// The CTE is materialized first: no backend but ours is ever
		// handed to pg_terminate_backend, whatever order the planner
		// would give the conditions.
		err := h.admin.QueryRow(ctx, `WITH ours AS MATERIALIZED (
				SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid())
			SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM ours`, h.app).Scan(&n)
		if err != nil {
			t.Errorf("kill PostgreSQL connections: %v", err)
		}
		h.killedPG.Add(n)
		if err := h.killRedis(ctx); err != nil {
			t.Errorf("kill Redis connections: %v", err)
		}
	}
}

// killRedis kills the Redis connections named h.redisName.
func (h *hooks) killRedis(ctx context.Context) error {
	list, err := h.adminRedis.ClientList(ctx).Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(list, "\n") {
		var id, name string
		for _, field := range strings.Fields(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				id = v
			case "name":
				name = v
			}
		}
		if name != h.redisName || id == "" {
			continue
		}
		n, err := h.adminRedis.Do(ctx, "CLIENT", "KILL", "ID", id).Int64()
		if err != nil {
			return err
		}
		h.killedRedis.Add(n)
	}
	return nil
}
