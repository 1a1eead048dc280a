package pgstore

import "time"

// DefaultTable is the table a [Store] uses unless [WithTable] says otherwise.
const DefaultTable = "webhook_events"

// pruneBatch is how many rows one DELETE of [Store.Prune] removes at most,
// so that pruning a large backlog never holds one long transaction.
const pruneBatch = 10_000

// Option configures [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	table         string
	pruneInterval time.Duration
	onPrune       func(deleted int64, err error)
}

// WithTable sets the table that holds the claims (default [DefaultTable]).
// The name is a plain identifier, optionally schema-qualified
// ("webhooks.events"); it is quoted, so it is case-sensitive. Anything else
// makes [New] fail with [ErrInvalidTable]. Give each kind of receiver its
// own table, or share one: keys are hashes of the event ids, so receivers
// of different senders do not collide.
func WithTable(name string) Option {
	return optionFunc(func(c *config) { c.table = name })
}

// WithPruneInterval makes the store run [Store.Prune] every d in a goroutine
// of its own, which [Store.Close] stops. Zero or negative (the default)
// means no background pruning: call Prune yourself, from a cron job or a
// single replica. Every replica may prune; concurrent prunes skip each
// other's rows instead of waiting.
func WithPruneInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.pruneInterval = d })
}

// WithPruneObserver sets a function called after each background prune with
// the number of rows deleted and the error, if any, so that an operator sees
// a failing prune (a table that grows) in their logs or metrics. It is
// called from the pruning goroutine; nil is ignored.
func WithPruneObserver(f func(deleted int64, err error)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.onPrune = f
		}
	})
}
