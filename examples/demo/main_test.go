package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// TestRun plays the demo, so that the README's first command cannot rot.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	run(&out)
	got := out.String()
	for _, want := range []string{
		`200 OK "hello after two 503s"`,
		`200 OK "served after Retry-After"`,
		"attempt timeout of 500ms",
		`200 OK "the second attempt was quick"`,
		`404 Not Found "404 page not found"`,
		`503 Service Unavailable "gateway hiccup"`,
		`200 OK "charged once"`,
		"closed → open",
		"failed fast, not sent",
		"half-open → closed",
	} {
		assert.Contains(t, got, want)
	}
}
