package redisfleet

// WithHeard calls fn after each piece of another replica's news is acted
// on.
func WithHeard(fn func(kind byte, key string)) Option {
	return optionFunc(func(f *Fleet) { f.heard = fn })
}

// Crash stops the background work without giving the shares back, as a
// replica that dies does.
func (f *Fleet) Crash() {
	f.closed.Store(true)
	f.cancel()
	f.wg.Wait()
	f.opsMu.Lock()
	f.stopped = true
	f.opsMu.Unlock()
	f.ops.Wait()
}

// Granted returns this replica's share of key, per second, and whether it
// is leased (not a fallback).
func (l *Limiter) Granted(key string) (float64, bool) {
	l.mu.RLock()
	s := l.shares[key]
	l.mu.RUnlock()
	if s == nil {
		return 0, false
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.b.rate, !l.f.Degraded()
}

// Listened is closed once the fleet has sent its subscription to the
// others' news.
func (f *Fleet) Listened() <-chan struct{} { return f.listened }
