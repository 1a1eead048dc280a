package webhook

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hugeHeaders are signature headers of 1 MiB for every scheme: as many
// plausible signatures as fit.
func hugeHeaders() map[string]http.Header {
	const size = 1 << 20
	rep := func(item string) string { return strings.Repeat(item, size/len(item)) }
	return map[string]http.Header{
		"standard": swHeader(rep("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= ")),
		"stripe":   stHeader("t=1614265330" + rep(",v1="+stV1)),
		"github":   hdr("X-Hub-Signature-256", "sha256="+rep("ab")),
		"hmac":     hmHeader(rep("ab"), "1614265330"),
	}
}

// tenSecrets returns the four verifiers with ten secrets each.
func tenSecrets(t testing.TB) map[string]Verifier {
	var swMore, more []string
	for i := range 9 {
		s := "secret-" + strings.Repeat("x", i+1)
		more = append(more, s)
		swMore = append(swMore, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	vs := map[string]Verifier{}
	var err error
	vs["standard"], err = StandardWebhooks(swSecret, at(vectorTime), WithSecrets(swMore...))
	require.NoError(t, err)
	vs["stripe"], err = Stripe(stSecret, at(vectorTime), WithSecrets(more...))
	require.NoError(t, err)
	vs["github"], err = GitHub(ghSecret, WithSecrets(more...))
	require.NoError(t, err)
	vs["hmac"], err = HMAC(hmSecret, at(vectorTime), WithSecrets(more...))
	require.NoError(t, err)
	return vs
}

// TestVerifyRejectsHugeSignatureHeaderBeforeParsing: a 1 MiB signature
// header against ten secrets is refused as malformed from its length,
// before any HMAC is computed (BenchmarkVerifyHugeSignatureHeader gives
// the cost).
func TestVerifyRejectsHugeSignatureHeaderBeforeParsing(t *testing.T) {
	vs := tenSecrets(t)
	for name, h := range hugeHeaders() {
		err := vs[name].Verify(h, []byte(swBody))
		assert.ErrorIs(t, err, ErrInvalidHeader, name)
		assert.Contains(t, err.Error(), "longer than 4096 bytes", name)
	}
}

func BenchmarkVerifyHugeSignatureHeader(b *testing.B) {
	vs := tenSecrets(b)
	for name, h := range hugeHeaders() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if vs[name].Verify(h, []byte(swBody)) == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}

// TestVerifyStandardWebhooksStrictBase64: the signature with its padding
// bits changed decodes to the same bytes leniently, and is refused.
func TestVerifyStandardWebhooksStrictBase64(t *testing.T) {
	odd := strings.Replace(strings.TrimPrefix(swSig, "v1,"), "1OE=", "1OF=", 1)
	canonical, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSig, "v1,"))
	require.NoError(t, err)
	lenient, err := base64.StdEncoding.DecodeString(odd)
	require.NoError(t, err)
	require.Equal(t, canonical, lenient, "the lenient decoder cannot tell them apart")
	v := mustSW(t, swSecret, at(vectorTime))
	assert.ErrorIs(t, v.Verify(swHeader("v1,"+odd), []byte(swBody)), ErrInvalidSignature)
	assert.NoError(t, v.Verify(swHeader(swSig), []byte(swBody)))
}
