package riverqueue

import "errors"

// Errors of this package; test them with errors.Is.
var (
	// ErrNoProcess: the worker was built with a nil process function; every
	// attempt fails with it, so its jobs end in the dead-letter queue.
	ErrNoProcess = errors.New("webhook: worker has no process function")
	// ErrNoPool: the River client was built on a driver without a pool
	// (riverpgxv5.New(nil)), which can insert only inside your transactions.
	ErrNoPool = errors.New("webhook: river client has no database pool")
	// ErrNoClient: a nil *river.Client was passed.
	ErrNoClient = errors.New("webhook: nil river client")
	// ErrAttemptSuperseded: when the attempt came to commit, its job was
	// no longer running this attempt (River had requeued it as stuck, or
	// another attempt finished it); the attempt's effects were rolled back.
	ErrAttemptSuperseded = errors.New("webhook: job attempt superseded")
	// ErrNotDeadLettered: Replay found no dead-lettered job for the event id
	// (never queued, not failed, already replayed, or cleaned out by River
	// after its DiscardedJobRetentionPeriod).
	ErrNotDeadLettered = errors.New("webhook: event is not in the dead-letter queue")
)
