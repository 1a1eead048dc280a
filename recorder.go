package resilient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// recorder makes a request body without GetBody replayable without reading
// it up front: it keeps what the transport reads, up to limit bytes, while
// the body is sent. A retry sends the recorded bytes, then goes on reading
// the caller's body where the previous attempt stopped. Only one attempt
// reads at a time: a retry takes the body away from the previous attempt
// (whose later reads fail) and waits only while a read of the caller's body
// is under way, so a base transport that never closes a body cannot hang it.
type recorder struct {
	src   io.ReadCloser
	limit int64
	want  int64 // ContentLength; 0 or less when unknown

	mu       sync.Mutex
	buf      []byte
	read     int64         // bytes read from src so far
	eof      bool          // src is exhausted: buf is the whole body unless over
	over     bool          // more than limit bytes: buf was dropped, no more replays
	srcErr   error         // src failed: a local error, not the host's
	reading  bool          // a Read of src is under way
	held     bool          // a Read of src spanned an attempt's deadline, or src was short
	waiter   chan struct{} // closed when the Read under way returns; made on demand
	cur      *recordedBody
	finished bool // the call is over
	closed   bool // src is closed
}

// open returns the body of the first attempt.
func (r *recorder) open() *recordedBody {
	b := &recordedBody{r: r}
	r.cur = b
	return b
}

// reopenGrace is how long a retry waits for a read of the caller's body
// that the previous attempt started: a read still under way after the wait
// before the retry means the caller's producer stalls, and the retry is
// given up (the last response is handed back) rather than waited for.
const reopenGrace = 10 * time.Millisecond

// reopen takes the body away from the previous attempt, waits (at most
// until ctx ends) for a read of src under way, and returns a body that
// replays the recording and goes on with the rest of src.
func (r *recorder) reopen(ctx context.Context) (*recordedBody, error) {
	r.mu.Lock()
	if r.cur != nil {
		r.cur.closed = true
	}
	var grace <-chan time.Time
	for r.reading {
		if r.waiter == nil {
			r.waiter = make(chan struct{})
		}
		if grace == nil {
			t := time.NewTimer(reopenGrace)
			defer t.Stop()
			grace = t.C
		}
		w := r.waiter
		r.mu.Unlock()
		select {
		case <-w:
		case <-grace:
			return nil, fmt.Errorf("%w: the caller's body stalls", ErrBodyNotReplayable)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: the previous attempt still reads it: %w", ErrBodyNotReplayable, quote(context.Cause(ctx)))
		}
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if r.over || r.srcErr != nil {
		return nil, ErrBodyNotReplayable
	}
	b := &recordedBody{r: r}
	r.cur = b
	return b, nil
}

// replayable reports whether another attempt can send the whole body.
func (r *recorder) replayable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.over && r.srcErr == nil
}

// local reports whether the body itself holds the attempt up: the
// transport is waiting for the caller's body, or reading it failed. Such
// an attempt's failure says nothing about the host.
func (r *recorder) local() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reading || r.held || r.srcErr != nil
}

// complete returns a GetBody over the recording once it holds the whole
// body, so that the base transport can rewind it on its own; nil before.
func (r *recorder) complete() func() (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.eof || r.over {
		return nil
	}
	buf := r.buf
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
}

// finish marks the call as over and closes src unless a body still reads it.
func (r *recorder) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = true
	if r.cur == nil || r.cur.closed {
		r.closeSrcLocked()
	}
}

func (r *recorder) closeSrcLocked() {
	if !r.closed && !r.reading {
		r.closed = true
		r.src.Close()
	}
}

// recordedBody is the body of one attempt.
type recordedBody struct {
	r      *recorder
	ctx    context.Context // the attempt's, set before it is sent; nil without a deadline
	off    int64           // bytes handed to the transport
	closed bool            // under r.mu: closed by the transport, or taken away
}

// watch implements deadlineWatcher.
func (b *recordedBody) watch(ctx context.Context) { b.ctx = ctx }

// local reports whether the caller's body held this attempt up or failed.
func (b *recordedBody) local() bool { return b.r.local() }

// Read implements io.Reader: first the recorded bytes, then src.
func (b *recordedBody) Read(p []byte) (int, error) {
	r := b.r
	r.mu.Lock()
	switch {
	case b.closed:
		r.mu.Unlock()
		return 0, errRecorderClosed
	case !r.over && b.off < int64(len(r.buf)):
		n := copy(p, r.buf[b.off:])
		b.off += int64(n)
		r.mu.Unlock()
		return n, nil
	case b.off != r.read:
		r.mu.Unlock()
		return 0, ErrBodyNotReplayable
	case r.eof:
		r.mu.Unlock()
		return 0, io.EOF
	case r.srcErr != nil:
		err := r.srcErr
		r.mu.Unlock()
		return 0, err
	}
	r.reading = true
	r.mu.Unlock()

	n, err := r.src.Read(p)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.reading = false
	if heldUp(b.ctx) {
		r.held = true
	}
	if r.waiter != nil {
		close(r.waiter)
		r.waiter = nil
	}
	r.read += int64(n)
	b.off += int64(n)
	if !r.over {
		if r.read > r.limit {
			r.over, r.buf = true, nil
		} else {
			r.buf = appendRecorded(r.buf, p[:n], r.want, r.limit)
		}
	}
	switch {
	case err == io.EOF:
		r.eof = true
		r.held = r.held || r.read < r.want // shorter than its ContentLength
	case err != nil:
		r.srcErr = err
	}
	if r.finished && (b.closed || r.cur != b) {
		r.closeSrcLocked()
	}
	return n, err
}

// Close implements io.Closer. It releases src for the next attempt; src
// itself is closed once the call is over.
func (b *recordedBody) Close() error {
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if r.finished {
		r.closeSrcLocked()
	}
	return nil
}

// deadlineWatcher is a request body that wants to know the context of its
// attempt, to tell whether a read of the caller's body spanned the
// attempt's deadline (roundTripBefore hands it over).
type deadlineWatcher interface {
	watch(ctx context.Context)
	local() bool
}

// heldUp reports whether ctx is an attempt's context that one of this
// package's deadlines ended.
func heldUp(ctx context.Context) bool {
	if ctx == nil || ctx.Err() == nil {
		return false
	}
	_, ours := context.Cause(ctx).(*deadlineCause)
	return ours
}

// watchable reports whether a request body is worth watching: one that
// can write itself (io.WriterTo: the in-memory readers http.NewRequest
// wraps, which also give GetBody) holds the caller's bytes already, cannot
// stall or fail, and is left bare so that transports can copy it without a
// buffer.
func watchable(body io.ReadCloser) bool {
	_, inMemory := body.(io.WriterTo)
	return !inMemory
}

// watchedBody wraps a request body that is not recorded (it has GetBody,
// or the call is not retried) while an attempt with a deadline sends it, so
// that the breaker and the retry loop can tell a failure of the caller's
// body from one of the host: a read under way, or one that spanned the
// deadline, a read error, or a body shorter than its ContentLength.
type watchedBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	want    int64 // ContentLength; 0 or less when unknown
	n       int64 // bytes read; only the transport's reader touches it
	reading atomic.Bool
	bad     atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.reading.Store(true)
	n, err := b.rc.Read(p)
	b.reading.Store(false)
	b.n += int64(n)
	if (err != nil && err != io.EOF) || (err == io.EOF && b.n < b.want) || heldUp(b.ctx) {
		b.bad.Store(true)
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.rc.Close() }

func (b *watchedBody) watch(ctx context.Context) { b.ctx = ctx }

func (b *watchedBody) local() bool { return b.reading.Load() || b.bad.Load() }

// appendRecorded appends p to buf. The first growth takes the body's
// ContentLength at once when it is known and within limit; after that the
// buffer doubles (from 4 KiB), so a body of n bytes costs at most about 2n
// of garbage, never past limit.
func appendRecorded(buf, p []byte, want, limit int64) []byte {
	if need := len(buf) + len(p); need > cap(buf) {
		size := max(2*cap(buf), need, 4<<10)
		if cap(buf) == 0 && want >= int64(need) && want <= limit {
			size = int(want)
		}
		size = int(min(int64(size), max(limit, int64(need))))
		grown := make([]byte, len(buf), size)
		copy(grown, buf)
		buf = grown
	}
	return append(buf, p...)
}
