package state

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// maxFuzzInput is the longest input FuzzParse parses.
const maxFuzzInput = 64 << 10

// FuzzParse checks that Parse never panics, that anything it accepts survives
// Marshal with the same keys and string values, and that Marshal is idempotent.
func FuzzParse(f *testing.F) {
	f.Add([]byte(pythonStyle))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":"\u00e9\ud83d\ude00","b":[{},[],{"c":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Real state files are small, and TestParseRejects covers the size
		// limit. Truncating without a branch keeps the fuzzer from finding
		// "interesting" megabyte inputs that take minutes to minimise.
		data = data[:min(len(data), maxFuzzInput)]
		doc, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		first := doc.Marshal()
		if len(first) > MaxFileSize {
			// Re-indenting can grow a file past the limit; Update refuses to write that.
			return
		}
		again, err := Parse(first)
		if err != nil {
			t.Fatalf("Parse(Marshal(doc)) failed: %v\n%q", err, first)
		}
		if !slices.Equal(doc.Keys(), again.Keys()) {
			t.Fatalf("keys changed: %q -> %q", doc.Keys(), again.Keys())
		}
		for _, key := range doc.Keys() {
			v1, _, err1 := doc.String(key)
			v2, _, err2 := again.String(key)
			if v1 != v2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("value of %q changed: %q (%v) -> %q (%v)", key, v1, err1, v2, err2)
			}
		}
		if second := again.Marshal(); !bytes.Equal(first, second) {
			t.Fatalf("Marshal not idempotent:\n%q\n%q", first, second)
		}
	})
}
