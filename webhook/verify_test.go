package webhook

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Published vectors, and ones computed independently with
// `printf '<signed content>' | openssl dgst -sha256 -hmac <secret>`.
const (
	// standard-webhooks libraries, TestSymmetricWebhookSign.
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSig       = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	// GitHub docs, "Validating webhook deliveries", testing the signature.
	ghSecret = "It's a Secret to Everybody"
	ghBody   = "Hello, World!"
	ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	// Stripe: HMAC-SHA256 of "1614265330.<body>" under the secret as is (openssl).
	stSecret = "whsec_test_secret"
	stBody   = `{"id":"evt_1","type":"payment_intent.succeeded"}`
	stV1     = "f60156f07d9fcede64d2d4c42b7e1f12f459a2e0c0c293d0bd7f817fbc59ecf6"

	// Generic HMAC: "1614265330.<body>" (openssl).
	hmSecret = "hmac-secret"
	hmBody   = `{"id":"evt_1"}`
	hmSig    = "10a4c68a122c540a25eeb4e881d36963551ab8f3cf907ec7a05b85d76039f414"
)

var vectorTime = time.Unix(swTimestamp, 0)

func at(t time.Time) Option { return WithClock(func() time.Time { return t }) }

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func swHeader(sig string) http.Header {
	return hdr("webhook-id", swID, "webhook-timestamp", "1614265330", "webhook-signature", sig)
}

func stHeader(v string) http.Header { return hdr("Stripe-Signature", v) }

func hmHeader(sig, ts string) http.Header { return hdr("X-Signature", sig, "X-Timestamp", ts) }

func TestSignMatchesVectors(t *testing.T) {
	sig, err := SignStandardWebhooks(swSecret, swID, vectorTime, []byte(swBody))
	require.NoError(t, err)
	assert.Equal(t, swSig, sig)
	assert.Equal(t, ghSig, SignGitHub(ghSecret, []byte(ghBody)))
	assert.Equal(t, "t=1614265330,v1="+stV1, SignStripe(stSecret, vectorTime, []byte(stBody)))
	s, ts := SignHMAC(hmSecret, vectorTime, []byte(hmBody))
	assert.Equal(t, hmSig, s)
	assert.Equal(t, "1614265330", ts)
}

func TestVerify(t *testing.T) {
	sw := func(opts ...Option) Verifier {
		v, err := StandardWebhooks(swSecret, append([]Option{at(vectorTime)}, opts...)...)
		require.NoError(t, err)
		return v
	}
	st := func(opts ...Option) Verifier {
		v, err := Stripe(stSecret, append([]Option{at(vectorTime)}, opts...)...)
		require.NoError(t, err)
		return v
	}
	gh := func(opts ...Option) Verifier {
		v, err := GitHub(ghSecret, opts...)
		require.NoError(t, err)
		return v
	}
	hm := func(opts ...Option) Verifier {
		v, err := HMAC(hmSecret, append([]Option{at(vectorTime)}, opts...)...)
		require.NoError(t, err)
		return v
	}
	later := func(d time.Duration) Option { return at(vectorTime.Add(d)) }
	rawSecret, _ := StandardWebhooks(strings.TrimPrefix(swSecret, "whsec_"), at(vectorTime))
	otherSW := "whsec_" + "c2VjcmV0LW9uZS0xMjM0NTY3ODkw" // base64 "secret-one-1234567890"

	tests := []struct {
		name string
		v    Verifier
		h    http.Header
		body string
		want error // nil: passes
	}{
		// Standard Webhooks
		{"sw vector", sw(), swHeader(swSig), swBody, nil},
		{"sw secret without prefix", rawSecret, swHeader(swSig), swBody, nil},
		{"sw among other signatures", sw(), swHeader("v2,abc v1,AAAA " + swSig + " v1a,zzz"), swBody, nil},
		{"sw rotated secret", mustSW(t, otherSW, WithSecrets(swSecret), at(vectorTime)), swHeader(swSig), swBody, nil},
		{"sw tampered body", sw(), swHeader(swSig), `{"test": 2432232315}`, ErrInvalidSignature},
		{"sw re-serialised JSON", sw(), swHeader(swSig), `{"test":2432232314}`, ErrInvalidSignature},
		{"sw wrong secret", mustSW(t, otherSW, at(vectorTime)), swHeader(swSig), swBody, ErrInvalidSignature},
		{"sw wrong version", sw(), swHeader("v2," + strings.TrimPrefix(swSig, "v1,")), swBody, ErrInvalidSignature},
		{"sw empty v1", sw(), swHeader("v1,"), swBody, ErrInvalidSignature},
		{"sw non-canonical base64 (padding bits set)", sw(), swHeader(strings.Replace(swSig, "1OE=", "1OF=", 1)), swBody, ErrInvalidSignature},
		{"sw base64 without padding", sw(), swHeader(strings.TrimSuffix(swSig, "=")), swBody, ErrInvalidSignature},
		{"sw 16 signatures, the last valid", sw(), swHeader(strings.Repeat("v1,AAAA ", 15) + swSig), swBody, nil},
		{"sw 17 signatures", sw(), swHeader(strings.Repeat("v1,AAAA ", 16) + swSig), swBody, ErrInvalidHeader},
		{"sw 301 s old", sw(later(301 * time.Second)), swHeader(swSig), swBody, ErrTimestampOutOfRange},
		{"sw 301 s in the future", sw(later(-301 * time.Second)), swHeader(swSig), swBody, ErrTimestampOutOfRange},
		{"sw 300 s old passes", sw(later(300 * time.Second)), swHeader(swSig), swBody, nil},
		{"sw wider tolerance", sw(later(time.Hour), WithTolerance(2*time.Hour)), swHeader(swSig), swBody, nil},
		{"sw missing id", sw(), hdr("webhook-timestamp", "1614265330", "webhook-signature", swSig), swBody, ErrMissingHeader},
		{"sw missing timestamp", sw(), hdr("webhook-id", swID, "webhook-signature", swSig), swBody, ErrMissingHeader},
		{"sw missing signature", sw(), hdr("webhook-id", swID, "webhook-timestamp", "1614265330"), swBody, ErrMissingHeader},
		{"sw bad timestamp", sw(), hdr("webhook-id", swID, "webhook-timestamp", "16142653.30", "webhook-signature", swSig), swBody, ErrInvalidHeader},

		// Stripe
		{"stripe vector", st(), stHeader("t=1614265330,v1=" + stV1), stBody, nil},
		{"stripe rotation: any v1", st(), stHeader("t=1614265330,v1=00ff,v1=" + stV1 + ",v0=abcd"), stBody, nil},
		{"stripe extra scheme ignored", st(), stHeader("t=1614265330,v1=" + stV1 + ",x9=whatever"), stBody, nil},
		{"stripe our rotation", mustStripe(t, "whsec_new", WithSecrets(stSecret), at(vectorTime)), stHeader("t=1614265330,v1=" + stV1), stBody, nil},
		{"stripe tampered", st(), stHeader("t=1614265330,v1=" + stV1), stBody + " ", ErrInvalidSignature},
		{"stripe wrong secret", mustStripe(t, "whsec_other", at(vectorTime)), stHeader("t=1614265330,v1=" + stV1), stBody, ErrInvalidSignature},
		{"stripe only v0", st(), stHeader("t=1614265330,v0=" + stV1), stBody, ErrInvalidSignature},
		{"stripe too old", st(later(301 * time.Second)), stHeader("t=1614265330,v1=" + stV1), stBody, ErrTimestampOutOfRange},
		{"stripe timestamp changed", st(), stHeader("t=1614265331,v1=" + stV1), stBody, ErrInvalidSignature},
		{"stripe missing header", st(), hdr(), stBody, ErrMissingHeader},
		{"stripe no t", st(), stHeader("v1=" + stV1), stBody, ErrInvalidHeader},
		{"stripe two t", st(), stHeader("t=1,t=2,v1=" + stV1), stBody, ErrInvalidHeader},
		{"stripe empty t then t", st(), stHeader("t=,t=1614265330,v1=" + stV1), stBody, ErrInvalidHeader},
		{"stripe t then empty t", st(), stHeader("t=1614265330,t=,v1=" + stV1), stBody, ErrInvalidHeader},
		{"stripe empty t only", st(), stHeader("t=,v1=" + stV1), stBody, ErrInvalidHeader},
		{"stripe garbage", st(), stHeader("nonsense"), stBody, ErrInvalidHeader},
		{"stripe 16 items", st(), stHeader("t=1614265330" + strings.Repeat(",v0=00", 14) + ",v1=" + stV1), stBody, nil},
		{"stripe 17 items", st(), stHeader("t=1614265330" + strings.Repeat(",v0=00", 15) + ",v1=" + stV1), stBody, ErrInvalidHeader},

		// GitHub
		{"github docs example", gh(), hdr("X-Hub-Signature-256", ghSig), ghBody, nil},
		{"github rotation", mustGH(t, "new", WithSecrets(ghSecret)), hdr("X-Hub-Signature-256", ghSig), ghBody, nil},
		{"github tampered", gh(), hdr("X-Hub-Signature-256", ghSig), "Hello, World?", ErrInvalidSignature},
		{"github wrong secret", mustGH(t, "nope"), hdr("X-Hub-Signature-256", ghSig), ghBody, ErrInvalidSignature},
		{"github sha1 header only", gh(), hdr("X-Hub-Signature", "sha1=0123"), ghBody, ErrMissingHeader},
		{"github sha1 prefix", gh(), hdr("X-Hub-Signature-256", "sha1="+strings.TrimPrefix(ghSig, "sha256=")), ghBody, ErrInvalidHeader},
		{"github not hex", gh(), hdr("X-Hub-Signature-256", "sha256=zz"), ghBody, ErrInvalidHeader},
		{"github header over the cap", gh(), hdr("X-Hub-Signature-256", ghSig+strings.Repeat("0", MaxSignatureHeaderBytes)), ghBody, ErrInvalidHeader},

		// Generic HMAC
		{"hmac vector", hm(), hmHeader(hmSig, "1614265330"), hmBody, nil},
		{"hmac renamed headers", hm(WithHeaders("X-Sig", "X-Ts")), hdr("X-Sig", hmSig, "X-Ts", "1614265330"), hmBody, nil},
		{"hmac tampered", hm(), hmHeader(hmSig, "1614265330"), hmBody + "x", ErrInvalidSignature},
		{"hmac 301 s old", hm(later(301 * time.Second)), hmHeader(hmSig, "1614265330"), hmBody, ErrTimestampOutOfRange},
		{"hmac 301 s ahead", hm(later(-301 * time.Second)), hmHeader(hmSig, "1614265330"), hmBody, ErrTimestampOutOfRange},
		{"hmac missing timestamp", hm(), hdr("X-Signature", hmSig), hmBody, ErrMissingHeader},
		{"hmac not hex", hm(), hmHeader("xyz", "1614265330"), hmBody, ErrInvalidHeader},
		{"hmac negative timestamp", hm(), hmHeader(hmSig, "-5"), hmBody, ErrInvalidHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Verify(tt.h, []byte(tt.body))
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			for _, other := range []error{ErrMissingHeader, ErrInvalidHeader, ErrTimestampOutOfRange, ErrInvalidSignature} {
				if other != tt.want {
					assert.False(t, errors.Is(err, other), "also %v", other)
				}
			}
		})
	}
}

func mustSW(t *testing.T, secret string, opts ...Option) Verifier {
	v, err := StandardWebhooks(secret, opts...)
	require.NoError(t, err)
	return v
}

func mustStripe(t *testing.T, secret string, opts ...Option) Verifier {
	v, err := Stripe(secret, opts...)
	require.NoError(t, err)
	return v
}

func mustGH(t *testing.T, secret string, opts ...Option) Verifier {
	v, err := GitHub(secret, opts...)
	require.NoError(t, err)
	return v
}

func TestConstructorsRejectBadSecrets(t *testing.T) {
	for name, f := range map[string]func() (Verifier, error){
		"sw empty":      func() (Verifier, error) { return StandardWebhooks("") },
		"sw not base64": func() (Verifier, error) { return StandardWebhooks("whsec_***") },
		"stripe empty":  func() (Verifier, error) { return Stripe("") },
		"github empty":  func() (Verifier, error) { return GitHub("", WithSecrets("")) },
		"hmac empty":    func() (Verifier, error) { return HMAC("") },
	} {
		t.Run(name, func(t *testing.T) {
			v, err := f()
			assert.Nil(t, v)
			assert.ErrorIs(t, err, ErrNoSecret)
		})
	}
	_, err := SignStandardWebhooks("***", "id", time.Now(), nil)
	assert.ErrorIs(t, err, ErrNoSecret)
}

// FuzzVerify feeds arbitrary header values to every verifier: they must
// never panic, and anything they accept must carry a valid signature.
func FuzzVerify(f *testing.F) {
	f.Add("1614265330", swSig, "t=1614265330,v1="+stV1, ghSig, hmSig, swBody)
	f.Add("", "v1,", "t=,v1=", "sha256=", "", "")
	f.Add("-1", "v1,,,, v2", ",,,=,t==", "sha256=zz", "zz", "{")
	sw := mustVerifier(StandardWebhooks(swSecret, at(vectorTime)))
	st := mustVerifier(Stripe(stSecret, at(vectorTime)))
	gh := mustVerifier(GitHub(ghSecret))
	hm := mustVerifier(HMAC(hmSecret, at(vectorTime)))
	f.Fuzz(func(t *testing.T, ts, swS, stS, ghS, hmS, body string) {
		checks := []struct {
			v Verifier
			h http.Header
		}{
			{sw, hdr("webhook-id", swID, "webhook-timestamp", ts, "webhook-signature", swS)},
			{st, stHeader(stS)},
			{gh, hdr("X-Hub-Signature-256", ghS)},
			{hm, hmHeader(hmS, ts)},
		}
		for _, c := range checks {
			err := c.v.Verify(c.h, []byte(body))
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrMissingHeader) && !errors.Is(err, ErrInvalidHeader) &&
				!errors.Is(err, ErrTimestampOutOfRange) && !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("error outside the sentinels: %v", err)
			}
		}
		if gh.Verify(hdr("X-Hub-Signature-256", ghS), []byte(body)) == nil && ghS != SignGitHub(ghSecret, []byte(body)) &&
			!strings.EqualFold(ghS, SignGitHub(ghSecret, []byte(body))) {
			t.Fatalf("accepted a forged GitHub signature %q", ghS)
		}
		if sw.Verify(checks[0].h, []byte(body)) == nil {
			secs, _ := strconv.ParseInt(ts, 10, 64)
			want, _ := SignStandardWebhooks(swSecret, swID, time.Unix(secs, 0), []byte(body))
			if !slices.Contains(strings.Fields(swS), want) {
				t.Fatalf("accepted %q, which does not hold the canonical %q", swS, want)
			}
		}
	})
}

func mustVerifier(v Verifier, err error) Verifier {
	if err != nil {
		panic(err)
	}
	return v
}
