package soak_test

import (
	"fmt"
	"sync"
	"time"
)

// stallEvery is the tick of the stall watch; a tick that comes more than
// stallLimit late is a stall of the process, a spell in which no goroutine
// of the ticker's kind got to run: timers then fire late, whatever the
// library does. On a machine whose cores are taken by other work, or by
// PostgreSQL forking backends after the killer, stalls of 100 ms happen.
const (
	stallEvery = 5 * time.Millisecond
	stallLimit = 25 * time.Millisecond
)

// stallWatch records the stalls of the process from its start until stop.
type stallWatch struct {
	start time.Time
	stop  func()

	mu     sync.Mutex
	stalls []stall // over stallLimit, in order
}

// stall is a tick that came late by late, at end.
type stall struct {
	end  time.Time
	late time.Duration
}

func watchStalls() *stallWatch {
	w := &stallWatch{start: time.Now()}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(stallEvery)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				now := time.Now()
				if late := now.Sub(last) - stallEvery; late > stallLimit {
					w.mu.Lock()
					w.stalls = append(w.stalls, stall{end: now, late: late})
					w.mu.Unlock()
				}
				last = now
			}
		}
	})
	w.stop = func() {
		close(done)
		wg.Wait()
	}
	return w
}

// worst returns the longest stall that ended between from and to, or a
// zero stall.
func (w *stallWatch) worst(from, to time.Time) stall {
	if w == nil {
		return stall{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var s stall
	for _, st := range w.stalls {
		if !st.end.Before(from) && !st.end.After(to) && st.late > s.late {
			s = st
		}
	}
	return s
}

// summary describes the stalls that ended between from and to, for the
// figures table.
func (w *stallWatch) summary(from, to time.Time) string {
	s := w.worst(from, to)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, st := range w.stalls {
		if !st.end.Before(from) && !st.end.After(to) {
			n++
		}
	}
	if n == 0 {
		return "none over " + stallLimit.String()
	}
	return fmt.Sprintf("%d over %v, the worst %v at %.2fs", n, stallLimit, s.late.Round(time.Millisecond), s.end.Sub(from).Seconds())
}
