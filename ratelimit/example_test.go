package ratelimit_test

import (
	"fmt"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/ratelimit"
)

// At most 50 requests per second to each host, in bursts of up to 10; a
// call that cannot get its turn before its deadline fails with
// resilient.ErrThrottled.
func ExampleWithRateLimit() {
	client := resilient.New(resilient.Recommended(), ratelimit.WithRateLimit(50, 10))
	fmt.Println(client.Transport != nil)
	// Output: true
}
