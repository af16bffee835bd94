package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"unicode/utf8"
)

// Doc is a parsed state file: its top-level keys in file order, each with its
// value as raw JSON bytes exactly as written. The zero Doc is an empty object.
type Doc struct {
	path    string // the file it was loaded from, for error messages
	entries []entry
}

type entry struct {
	key    string // decoded key
	rawKey []byte // the key's JSON string as written, quotes included
	value  []byte // the value's JSON as written
}

// Parse parses data as a state file: a single JSON object with unique keys,
// in valid UTF-8, at most MaxFileSize bytes, nested at most MaxDepth levels deep.
// Any other input gives a *FormatError.
func Parse(data []byte) (*Doc, error) {
	if len(data) > MaxFileSize {
		return nil, &FormatError{Reason: fmt.Sprintf("%d bytes is more than the %d-byte limit", len(data), MaxFileSize)}
	}
	reason := func(format string, args ...any) error {
		return &FormatError{Reason: fmt.Sprintf(format, args...)}
	}
	start := skipSpace(data, 0)
	switch {
	case len(data) == 0:
		return nil, reason("file is empty")
	case start == len(data):
		return nil, reason("file holds only whitespace")
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return nil, reason("file starts with a UTF-8 byte order mark")
	case !utf8.Valid(data):
		return nil, reason("file is not valid UTF-8")
	}

	// Before decoding: encoding/json gives up at 10000 levels with a syntax error that
	// would hide the real problem.
	if offset := tooDeep(data); offset >= 0 {
		line, col := position(data, offset)
		return nil, reason("values nested more than %d levels deep at line %d, column %d", MaxDepth, line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var top json.RawMessage
	if err := dec.Decode(&top); err != nil {
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &syntaxErr):
			line, col := position(data, int(syntaxErr.Offset)-1)
			return nil, reason("not valid JSON at line %d, column %d", line, col)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, reason("not valid JSON: unexpected end of file")
		default:
			return nil, reason("not valid JSON")
		}
	}
	if top[0] != '{' {
		return nil, reason("top-level JSON value is %s, not an object", jsonType(top))
	}
	if end := skipSpace(data, int(dec.InputOffset())); end < len(data) {
		line, col := position(data, end)
		return nil, reason("unexpected data after the JSON object at line %d, column %d", line, col)
	}
	return parseObject(data, start, top)
}

// parseObject splits obj, a valid JSON object found at offset base of data,
// into its members.
func parseObject(data []byte, base int, obj []byte) (*Doc, error) {
	doc := &Doc{}
	seen := make(map[string]bool)
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return nil, &FormatError{Reason: "not valid JSON"}
	}
	for dec.More() {
		keyStart := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return nil, &FormatError{Reason: "not valid JSON"}
		}
		key, ok := tok.(string)
		if !ok {
			return nil, &FormatError{Reason: "not valid JSON"}
		}
		keyEnd := int(dec.InputOffset())
		rawKey := bytes.TrimLeft(obj[keyStart:keyEnd], " \t\r\n,")
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, &FormatError{Reason: "not valid JSON"}
		}
		if seen[key] {
			line, _ := position(data, base+keyEnd-len(rawKey))
			return nil, &FormatError{Reason: fmt.Sprintf("duplicate key %s at line %d", strconv.Quote(key), line)}
		}
		seen[key] = true
		doc.entries = append(doc.entries, entry{key: key, rawKey: bytes.Clone(rawKey), value: value})
	}
	return doc, nil
}

// Load reads and parses the state file at path, following symlinks. A missing
// file gives an error wrapping ErrNotFound; a malformed one a *FormatError
// naming the file.
func Load(path string) (*Doc, error) {
	data, err := readFile(path, path)
	if err != nil {
		return nil, err
	}
	return parseFile(path, data)
}

// parseFile parses data read from the file named display.
func parseFile(display string, data []byte) (*Doc, error) {
	doc, err := Parse(data)
	if err != nil {
		var formatErr *FormatError
		if errors.As(err, &formatErr) {
			formatErr.Path = display
		}
		return nil, err
	}
	doc.path = display
	return doc, nil
}

// readFile reads the state file at path, refusing anything that is not a
// regular file of at most MaxFileSize bytes. Errors name the file as display.
func readFile(path, display string) ([]byte, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && isSymlink(path) {
		return nil, brokenLink(path, display)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, display)
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("read state file %s: not a regular file", display)
	}
	if info.Size() > MaxFileSize {
		return nil, tooLarge(display, info.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(display, int64(len(data)))
	}
	return data, nil
}

func tooLarge(display string, size int64) error {
	return &FormatError{Path: display, Reason: fmt.Sprintf("%d bytes is more than the %d-byte limit", size, MaxFileSize)}
}

// String returns the value of key when it is a JSON string. present is false
// when the key is absent; err is set when it is present with another JSON type.
func (d *Doc) String(key string) (value string, present bool, err error) {
	i := d.index(key)
	if i < 0 {
		return "", false, nil
	}
	raw := d.entries[i].value
	file := "state file"
	if d.path != "" {
		file += " " + d.path
	}
	if raw[0] != '"' {
		return "", true, fmt.Errorf("%s: key %s is %s, not a string", file, strconv.Quote(key), jsonType(raw))
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", true, fmt.Errorf("%s: key %s holds an invalid JSON string", file, strconv.Quote(key))
	}
	return value, true, nil
}

// Has reports whether key is present, whatever its value.
func (d *Doc) Has(key string) bool { return d.index(key) >= 0 }

// Set stores value as a JSON string under key: in place when the key exists,
// otherwise as a new last key. It escapes value the way Python's json.dumps does.
func (d *Doc) Set(key, value string) {
	encoded := quotePython(value)
	if i := d.index(key); i >= 0 {
		d.entries[i].value = encoded
		return
	}
	d.entries = append(d.entries, entry{key: key, rawKey: quotePython(key), value: encoded})
}

// Delete removes key and reports whether it was present.
func (d *Doc) Delete(key string) bool {
	i := d.index(key)
	if i < 0 {
		return false
	}
	d.entries = append(d.entries[:i], d.entries[i+1:]...)
	return true
}

// Keys returns the keys in file order.
func (d *Doc) Keys() []string {
	keys := make([]string, len(d.entries))
	for i, e := range d.entries {
		keys[i] = e.key
	}
	return keys
}

// Marshal returns the document as Python's json.dumps(data, indent=2) + "\n"
// writes it: one key per line indented by two spaces, nested values re-indented,
// keys and string contents exactly as they were read. An empty Doc is "{}\n".
func (d *Doc) Marshal() []byte {
	if len(d.entries) == 0 {
		return []byte("{}\n")
	}
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, e := range d.entries {
		buf.WriteString("  ")
		buf.Write(e.rawKey)
		buf.WriteString(": ")
		if err := json.Indent(&buf, e.value, "  ", "  "); err != nil {
			// Values come from Parse or quotePython and are valid JSON.
			panic("state: invalid stored JSON value for key " + strconv.Quote(e.key))
		}
		if i < len(d.entries)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("}\n")
	return buf.Bytes()
}

func (d *Doc) index(key string) int {
	for i, e := range d.entries {
		if e.key == key {
			return i
		}
	}
	return -1
}

// quotePython encodes s as a JSON string the way Python's json.dumps does with
// its default ensure_ascii=True: printable ASCII as is, the usual two-character
// escapes, everything else as lowercase \uXXXX (surrogate pairs above U+FFFF).
func quotePython(s string) []byte {
	buf := make([]byte, 0, len(s)+2)
	buf = append(buf, '"')
	for _, r := range s {
		switch r {
		case '"':
			buf = append(buf, `\"`...)
		case '\\':
			buf = append(buf, `\\`...)
		case '\b':
			buf = append(buf, `\b`...)
		case '\f':
			buf = append(buf, `\f`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		default:
			switch {
			case r >= ' ' && r <= '~':
				buf = append(buf, byte(r))
			case r > 0xffff:
				r -= 0x10000
				buf = appendUnicodeEscape(buf, 0xd800+(r>>10))
				buf = appendUnicodeEscape(buf, 0xdc00+(r&0x3ff))
			default:
				buf = appendUnicodeEscape(buf, r)
			}
		}
	}
	return append(buf, '"')
}

func appendUnicodeEscape(buf []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(buf, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// jsonType names the JSON type of a valid raw value, with an article.
func jsonType(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// tooDeep returns the offset in raw of the first bracket (outside strings) that
// opens level MaxDepth+1, or -1 when raw is not nested that deep. raw need not be valid JSON.
func tooDeep(raw []byte) int {
	depth := 0
	inString, escaped := false, false
	for i, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return i
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return -1
}

// skipSpace returns the offset of the first byte at or after i that is not JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// position converts a byte offset into a 1-based line and column (in bytes).
func position(data []byte, offset int) (line, col int) {
	offset = max(0, min(offset, len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = offset - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
