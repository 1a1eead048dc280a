package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ThrottleResult is what scenario 9 measured for one stack.
type ThrottleResult struct {
	OK, Throttled int     // answers of the server: 200 and 429, during the run
	Late          int     // the 429s after the first second, once every stack had heard one
	PerSecond     float64 // useful throughput: 200s per second
}

// limitedServer allows limit requests per fixed window of one second and
// answers 429 with Retry-After (whole seconds to the next window) beyond;
// with headers, every answer also carries the IETF RateLimit fields.
type limitedServer struct {
	limit   int
	headers bool

	start, stop time.Time // answers after stop are not counted

	mu     sync.Mutex
	window time.Time
	used   int

	ok, tmr, late atomic.Int64
}

func (s *limitedServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	s.mu.Lock()
	if now.Sub(s.window) >= time.Second {
		s.window = s.window.Add(now.Sub(s.window).Truncate(time.Second))
		s.used = 0
	}
	s.used++
	left, reset := s.limit-s.used, s.window.Add(time.Second).Sub(now)
	s.mu.Unlock()
	secs := strconv.Itoa(int((reset + time.Second - 1) / time.Second))
	if s.headers {
		w.Header().Set("RateLimit-Policy", `"default";q=`+strconv.Itoa(s.limit)+`;w=1`)
		w.Header().Set("RateLimit", `"default";r=`+strconv.Itoa(max(left, 0))+`;t=`+secs)
	}
	counted := now.Before(s.stop)
	if left < 0 {
		if counted {
			s.tmr.Add(1)
			if now.Sub(s.start) >= time.Second {
				s.late.Add(1)
			}
		}
		w.Header().Set("Retry-After", secs)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if counted {
		s.ok.Add(1)
	}
	_, _ = io.WriteString(w, "ok")
}

// Throttle (scenario 9) runs goroutines of GET calls for d through one
// client of the stack against a loopback server that allows perSecond
// requests per second and answers 429 with Retry-After beyond (with
// headers, it also sends RateLimit fields), and counts what the server
// answered during d.
func Throttle(s Stack, perSecond, goroutines int, d time.Duration, headers bool) ThrottleResult {
	start := time.Now()
	ls := &limitedServer{limit: perSecond, headers: headers, window: start, start: start, stop: start.Add(d)}
	srv := httptest.NewServer(ls)
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = goroutines
	defer base.CloseIdleConnections()
	do := s.New(base, Default)

	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for time.Since(start) < d {
				_, _ = do(context.Background(), "GET", srv.URL, nil)
			}
		})
	}
	wg.Wait()
	return ThrottleResult{OK: int(ls.ok.Load()), Throttled: int(ls.tmr.Load()), Late: int(ls.late.Load()), PerSecond: float64(ls.ok.Load()) / d.Seconds()}
}
