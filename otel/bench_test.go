package resilientotel_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/resilient-go/resilient"
)

// BenchmarkObserver measures a successful call through the stack with and
// without the observer, recording into the SDK, inside a span.
func BenchmarkObserver(b *testing.B) {
	for _, bc := range []struct {
		name     string
		observed bool
	}{{"none", false}, {"otel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			tel := newTelemetry(b)
			opts := []resilient.Option{resilient.WithRetry(resilient.RetryPolicy{})}
			if bc.observed {
				opts = append(opts, tel.observer())
			}
			client := &http.Client{Transport: resilient.NewTransport(answers(200), opts...)}
			ctx, span := tel.tp.Tracer("bench").Start(context.Background(), "GET")
			defer span.End()
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.example/items", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
