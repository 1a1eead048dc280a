package webhook

import (
	"net/http"
	"time"
)

// Timeouts of [NewServer], what a webhook receiver's http.Server should set.
const (
	// ServerReadHeaderTimeout bounds slow headers, which the handler never sees.
	ServerReadHeaderTimeout = 5 * time.Second
	// ServerReadTimeout bounds headers and body; the handler's own body
	// deadline ([DefaultReadTimeout]) is shorter.
	ServerReadTimeout = 15 * time.Second
	// ServerWriteTimeout is longer than process and the store calls take;
	// senders give up after 10–30 s.
	ServerWriteTimeout = 30 * time.Second
	// ServerIdleTimeout closes idle keep-alive connections.
	ServerIdleTimeout = 60 * time.Second
	// ServerMaxHeaderBytes is far below net/http's 1 MiB default;
	// signature headers are refused past [MaxSignatureHeaderBytes] anyway.
	ServerMaxHeaderBytes = 64 << 10
)

// NewServer returns an http.Server for h with the timeouts a webhook
// receiver should set (the Server... constants), so that slow or trickling
// senders cannot hold its goroutines. Set Addr and call ListenAndServe, or
// Serve on a listener of your own; the fields can be changed before that.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
	}
}
