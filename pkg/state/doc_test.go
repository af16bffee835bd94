package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fakeSecret = "Abc8Q~not.a.real.secret~value_1234567890"

func TestParseKeepsOrderAndRawValues(t *testing.T) {
	data := []byte(`{"B": 1.50, "a": "x\u0041", "C": {"z":[ 1 ,2 ]}, "\u0044": null}`)
	doc, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.Keys(), []string{"B", "a", "C", "D"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q, want %q", got, want)
	}
	want := "{\n  \"B\": 1.50,\n  \"a\": \"x\\u0041\",\n  \"C\": {\n    \"z\": [\n      1,\n      2\n    ]\n  },\n  \"\\u0044\": null\n}\n"
	if got := string(doc.Marshal()); got != want {
		t.Fatalf("Marshal() =\n%s\nwant\n%s", got, want)
	}
	if v, ok, err := doc.String("a"); v != "xA" || !ok || err != nil {
		t.Fatalf(`String("a") = %q, %v, %v; want "xA", true, nil`, v, ok, err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, data, reason string
	}{
		{"empty", "", "file is empty"},
		{"whitespace", " \n\t\r\n", "only whitespace"},
		{"not JSON", "TENANT_ID=abc\n", "not valid JSON at line 1, column 1"},
		{"bad token on line 3", "{\n  \"a\": \"b\",\n  \"c\": bad\n}\n", "not valid JSON at line 3, column 8"},
		{"truncated", "{\n  \"TENANT_ID\": \"abc", "unexpected end of file"},
		{"missing close", "{\"a\": 1", "unexpected end of file"},
		{"trailing garbage", "{\"a\": 1}\n}x", "unexpected data after the JSON object at line 2, column 1"},
		{"two objects", "{}{}", "unexpected data after the JSON object at line 1, column 3"},
		{"array", "[1, 2]", "top-level JSON value is an array, not an object"},
		{"string", `"abc"`, "top-level JSON value is a string, not an object"},
		{"number", "42\n", "top-level JSON value is a number, not an object"},
		{"null", "null", "top-level JSON value is null, not an object"},
		{"duplicate key", "{\n  \"a\": 1,\n  \"b\": 2,\n  \"a\": 3\n}", `duplicate key "a" at line 4`},
		{"duplicate key by escape", `{"a": 1, "\u0061": 2}`, `duplicate key "a" at line 1`},
		{"byte order mark", "\xef\xbb\xbf{}", "byte order mark"},
		{"invalid UTF-8", "{\"a\": \"\xff\"}", "not valid UTF-8"},
		{"nested too deep", "{\"a\":" + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}", "nested more than 32 levels deep at line 1, column 37"},
		{"too large", "{\"a\": \"" + strings.Repeat("x", MaxFileSize) + "\"}", "more than the 1048576-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			var formatErr *FormatError
			if !errors.As(err, &formatErr) {
				t.Fatalf("Parse error = %v, want a *FormatError", err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not contain %q", err, tt.reason)
			}
		})
	}
}

func TestParseDepthLimit(t *testing.T) {
	// Brackets inside strings do not count.
	deepest := `{"s": "[[[{{{\\\"[[[",` + `"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + "}"
	if _, err := Parse([]byte(deepest)); err != nil {
		t.Fatalf("Parse of a value nested %d levels deep: %v", MaxDepth, err)
	}
}

func TestParseDepthBeyondTheDecoderLimit(t *testing.T) {
	deep := `{"a": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}"
	_, err := Parse([]byte(deep))
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("Parse of a value nested 100000 levels deep: %v, want the nesting limit named", err)
	}
}

func TestFormatErrorsNeverQuoteContent(t *testing.T) {
	inputs := []string{
		`{"PROVISIONER_CLIENT_SECRET": "` + fakeSecret + `"`,
		`{"PROVISIONER_CLIENT_SECRET": "` + fakeSecret + `"} trailing`,
		`{"PROVISIONER_CLIENT_SECRET": ` + fakeSecret + `}`,
		`["` + fakeSecret + `"]`,
		`"` + fakeSecret + `"`,
	}
	for _, in := range inputs {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		for _, fragment := range []string{fakeSecret, "Abc8Q", "'A'", "'~'"} {
			if strings.Contains(err.Error(), fragment) {
				t.Errorf("error %q quotes content %q", err, fragment)
			}
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("{\"a\": "), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var formatErr *FormatError
	if !errors.As(err, &formatErr) || formatErr.Path != path || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load error = %v, want a *FormatError naming %s", err, path)
	}

	_, err = Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Load of a missing file: %v, want ErrNotFound naming the file", err)
	}

	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load of a directory: %v, want a not-a-regular-file error", err)
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, bytes.Repeat([]byte(" "), MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load of a %d-byte file: %v, want a size-limit FormatError naming the file", MaxFileSize+1, err)
	}
}

func TestLoadFollowsSymlink(t *testing.T) {
	skipSymlinksUnderWine(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	if err := os.WriteFile(target, []byte(`{"TENANT_ID": "t"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, FileName)
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	doc, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := doc.String(KeyTenantID); v != "t" {
		t.Fatalf("TENANT_ID = %q, want t", v)
	}
}

func TestLoadAndFindRefuseBrokenSymlink(t *testing.T) {
	skipSymlinksUnderWine(t)
	dir := t.TempDir()
	link := filepath.Join(dir, FileName)
	if err := os.Symlink("gone.json", link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	_, loadErr := Load(link)
	_, findErr := Find("", dir)
	for _, err := range []error{loadErr, findErr} {
		if !errors.Is(err, ErrBrokenLink) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "gone.json") {
			t.Errorf("error = %v, want ErrBrokenLink naming gone.json and not ErrNotFound", err)
		}
	}
}

func TestString(t *testing.T) {
	doc, err := Parse([]byte(`{"s": "a\nb", "n": 12, "b": true, "z": null, "o": {"secret": "x"}, "a": ["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key     string
		value   string
		present bool
		errText string
	}{
		{"s", "a\nb", true, ""},
		{"missing", "", false, ""},
		{"n", "", true, `key "n" is a number, not a string`},
		{"b", "", true, `key "b" is a boolean, not a string`},
		{"z", "", true, `key "z" is null, not a string`},
		{"o", "", true, `key "o" is an object, not a string`},
		{"a", "", true, `key "a" is an array, not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			value, present, err := doc.String(tt.key)
			if value != tt.value || present != tt.present {
				t.Errorf("String(%q) = %q, %v; want %q, %v", tt.key, value, present, tt.value, tt.present)
			}
			switch {
			case tt.errText == "" && err != nil:
				t.Errorf("String(%q) error = %v", tt.key, err)
			case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
				t.Errorf("String(%q) error = %v, want one containing %q", tt.key, err, tt.errText)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("String(%q) error %q quotes the value", tt.key, err)
			}
		})
	}
}

func TestSetHasDeleteKeys(t *testing.T) {
	var doc Doc
	if got := string(doc.Marshal()); got != "{}\n" {
		t.Fatalf("empty Marshal() = %q, want {}\\n", got)
	}
	doc.Set("A", "1")
	doc.Set("B", "2")
	doc.Set("C", "3")
	doc.Set("A", "one")
	if !doc.Has("B") || doc.Has("D") {
		t.Fatalf("Has: B=%v D=%v, want true false", doc.Has("B"), doc.Has("D"))
	}
	if !doc.Delete("B") || doc.Delete("B") {
		t.Fatal("Delete(B) twice: want true then false")
	}
	if got, want := doc.Keys(), []string{"A", "C"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q, want %q", got, want)
	}
	want := "{\n  \"A\": \"one\",\n  \"C\": \"3\"\n}\n"
	if got := string(doc.Marshal()); got != want {
		t.Fatalf("Marshal() = %q, want %q", got, want)
	}
	doc.Delete("A")
	doc.Delete("C")
	if got := string(doc.Marshal()); got != "{}\n" {
		t.Fatalf("Marshal() after deleting everything = %q, want {}\\n", got)
	}
}

// TestSetEscapesLikePython compares with json.dumps output from CPython 3.
func TestSetEscapesLikePython(t *testing.T) {
	tests := []struct{ value, want string }{
		{"plain", `"plain"`},
		{"Zoë", `"Zo\u00eb"`},
		{"☃", `"\u2603"`},
		{"😀", `"\ud83d\ude00"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f\u007f"`},
		{"</script>&", `"</script>&"`},
		{"\u2028", `"\u2028"`},
	}
	for _, tt := range tests {
		var doc Doc
		doc.Set(tt.value, tt.value)
		want := "{\n  " + tt.want + ": " + tt.want + "\n}\n"
		if got := string(doc.Marshal()); got != want {
			t.Errorf("Set(%q): Marshal() = %q, want %q", tt.value, got, want)
		}
		if got, _, err := doc.String(tt.value); got != tt.value || err != nil {
			t.Errorf("String(%q) = %q, %v after Set", tt.value, got, err)
		}
	}
}

// The testdata files were written by CPython's json.dumps(data, indent=2) + "\n",
// the second after deleting PROVISIONER_CLIENT_SECRET from the same dict.
func TestPythonFileRoundTrip(t *testing.T) {
	original, err := os.ReadFile("testdata/python-state.json")
	if err != nil {
		t.Fatal(err)
	}
	withoutSecret, err := os.ReadFile("testdata/python-state-without-secret.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(original)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys()) < 13 {
		t.Fatalf("fixture has %d keys, want at least 13", len(doc.Keys()))
	}
	if got := doc.Marshal(); !bytes.Equal(got, original) {
		t.Fatalf("unchanged round trip differs:\n%s\nwant\n%s", got, original)
	}
	if !doc.Delete(KeyClientSecret) {
		t.Fatal("fixture lacks PROVISIONER_CLIENT_SECRET")
	}
	got := doc.Marshal()
	if !bytes.Equal(got, withoutSecret) {
		t.Fatalf("after deleting the secret:\n%s\nwant (from Python)\n%s", got, withoutSecret)
	}
	if bytes.Contains(got, []byte(fakeSecret)) {
		t.Fatal("secret still present")
	}
}
