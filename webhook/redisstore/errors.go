package redisstore

import "errors"

// ErrNilClient is returned by every method of a [Store] made by [New] with a
// nil client.
var ErrNilClient = errors.New("webhook: redisstore: nil redis client")

// ErrInvalidDuration is returned by Claim, Extend and Complete for a lease
// or keep of zero or less: Redis cannot hold a key for no time.
var ErrInvalidDuration = errors.New("webhook: redisstore: lease and keep must be positive")

// ErrUnexpectedValue is returned by Claim when the key holds a string this
// store did not write: another program uses the same key space. Choose
// another prefix with [WithPrefix]. Nothing is changed.
var ErrUnexpectedValue = errors.New("webhook: redisstore: key holds a value this store did not write")
