// Package testenv finds the real servers that tests of this repository talk
// to: PostgreSQL and Redis on loopback by default. A test that needs a server
// that is not running is skipped with a one-line hint on how to start it,
// except when CI=true, where it fails instead.
//
// It is internal and standard library only; the nested modules of this
// repository (webhook/pgstore, webhook/redisstore, webhook/riverqueue) import
// it too.
package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Environment variables that override the default servers.
const (
	PostgresEnv = "RESILIENT_TEST_POSTGRES"
	RedisEnv    = "RESILIENT_TEST_REDIS"
)

// Defaults used when the environment variables are unset.
const (
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedis    = "127.0.0.1:6379"
)

// Hints printed when a server is down.
const (
	postgresHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
	redisHint    = `start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`
)

// Postgres returns the connection string of the test PostgreSQL server
// ($RESILIENT_TEST_POSTGRES or [DefaultPostgres]) once it answers on its
// port; otherwise it skips t, or fails it under CI=true.
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := getenv(PostgresEnv, DefaultPostgres)
	require(t, "PostgreSQL", postgresAddr(dsn), postgresHint)
	return dsn
}

// Redis returns the address (host:port) of the test Redis server
// ($RESILIENT_TEST_REDIS or [DefaultRedis]) once it answers on its port;
// otherwise it skips t, or fails it under CI=true. A redis:// URL in the
// variable is reduced to its host and port.
func Redis(t testing.TB) string {
	t.Helper()
	addr := getenv(RedisEnv, DefaultRedis)
	if u, err := url.Parse(addr); err == nil && u.Scheme != "" && u.Host != "" {
		addr = u.Host
	}
	require(t, "Redis", addr, redisHint)
	return addr
}

// Name returns a name unique to this test run, made of prefix, the process
// id and the time, for tables and key prefixes that must not collide with
// another run on the same server. It holds only [a-z0-9_].
func Name(prefix string) string {
	return strings.ToLower(fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano()%1e9))
}

// InCI reports whether the tests run in CI (CI=true), where a missing
// server is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

func require(t testing.TB, what, addr, hint string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	msg := fmt.Sprintf("%s not reachable at %s (%v); %s", what, addr, err, hint)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// postgresAddr returns host:port of a postgres:// URL or key=value DSN.
func postgresAddr(dsn string) string {
	host, port := "127.0.0.1", "5432"
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if h := u.Hostname(); h != "" {
			host = h
		}
		if p := u.Port(); p != "" {
			port = p
		}
		return net.JoinHostPort(host, port)
	}
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		}
	}
	return net.JoinHostPort(host, port)
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
