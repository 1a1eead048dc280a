package resilient

import (
	"bytes"
	"testing"
)

// TestAppendRecordedGrowth: the recording keeps every byte, takes a known
// ContentLength at once, and never grows past the limit.
func TestAppendRecordedGrowth(t *testing.T) {
	tests := []struct {
		name        string
		want, limit int64
		chunks      []int
		maxCap      int
	}{
		{"known length, one allocation", 10000, 1 << 20, []int{4096, 4096, 1808}, 10000},
		{"unknown length doubles", 0, 1 << 20, []int{8192, 8192, 8192, 8192}, 32768},
		{"limit caps growth", 0, 5000, []int{3000, 2000}, 5000},
		{"length over limit ignored", 1 << 30, 6000, []int{100}, 6000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf, all []byte
			caps := map[int]bool{}
			for i, n := range tt.chunks {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				all = append(all, p...)
				buf = appendRecorded(buf, p, tt.want, tt.limit)
				caps[cap(buf)] = true
			}
			if !bytes.Equal(buf, all) {
				t.Fatal("the recording lost or changed bytes")
			}
			if cap(buf) > tt.maxCap {
				t.Fatalf("cap %d, want at most %d", cap(buf), tt.maxCap)
			}
			if tt.want > 0 && tt.want <= tt.limit && len(caps) != 1 {
				t.Fatalf("grew %d times with a known length", len(caps))
			}
		})
	}
}
