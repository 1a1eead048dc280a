package webhook

import (
	"net/http"
	"time"
)

// DefaultTolerance is the replay window of the verifiers whose scheme signs
// a timestamp.
const DefaultTolerance = 5 * time.Minute

// Option configures a verifier. Options that do not apply to a scheme (a
// tolerance for GitHub, which signs no timestamp) are ignored.
type Option interface {
	apply(*settings)
}

type optionFunc func(*settings)

func (f optionFunc) apply(s *settings) { f(s) }

type settings struct {
	tolerance       time.Duration
	now             func() time.Time
	secrets         []string
	signatureHeader string
	timestampHeader string
}

func newSettings(secret string, opts []Option) settings {
	s := settings{tolerance: DefaultTolerance, now: time.Now, secrets: []string{secret},
		signatureHeader: "X-Signature", timestampHeader: "X-Timestamp"}
	for _, o := range opts {
		if o != nil {
			o.apply(&s)
		}
	}
	return s
}

// WithTolerance sets the replay window: a delivery whose signed timestamp is
// more than d before or after now is rejected with ErrTimestampOutOfRange.
// Zero or negative means [DefaultTolerance]; the window cannot be turned off.
func WithTolerance(d time.Duration) Option {
	return optionFunc(func(s *settings) {
		if d > 0 {
			s.tolerance = d
		}
	})
}

// WithClock replaces time.Now, for tests and for replaying stored
// deliveries. A nil now is ignored.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(s *settings) {
		if now != nil {
			s.now = now
		}
	})
}

// WithSecrets adds secrets that are accepted as well as the first one, for
// rotating a secret without dropping deliveries: a signature made with any
// of them passes. Empty strings are ignored.
func WithSecrets(more ...string) Option {
	return optionFunc(func(s *settings) { s.secrets = append(s.secrets, more...) })
}

// WithHeaders sets the names of the signature and timestamp headers of the
// [HMAC] scheme (default X-Signature and X-Timestamp). Empty names keep the
// default. Other schemes ignore it.
func WithHeaders(signature, timestamp string) Option {
	return optionFunc(func(s *settings) {
		if signature != "" {
			s.signatureHeader = http.CanonicalHeaderKey(signature)
		}
		if timestamp != "" {
			s.timestampHeader = http.CanonicalHeaderKey(timestamp)
		}
	})
}
