package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// errNotStrict is returned for any line that is not exactly one flat JSON
// object with known, distinct keys. The message never echoes the input.
var errNotStrict = errors.New("not a strict JSON object (unknown, duplicate or misspelt field, wrong type, nesting, or trailing data)")

var (
	headerKeys = jsonKeys(reflect.TypeFor[Header]())
	recordKeys = jsonKeys(reflect.TypeFor[wireRecord]())
)

// jsonKeys returns the JSON names of a struct's fields.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys[name] = true
	}
	return keys
}

// decodeStrict decodes line, one JSON object, into v. encoding/json alone
// accepts duplicate keys (the last wins), matches keys case-insensitively
// and ignores trailing data; decodeStrict refuses all three, as well as
// unknown keys and values nested deeper than an array of scalars.
func decodeStrict(line []byte, keys map[string]bool, v any) error {
	if err := checkKeys(line, keys); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errNotStrict
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) != 0 {
		return errNotStrict
	}
	return nil
}

// checkKeys walks the tokens of one object: every key must be one of keys,
// exactly, at most once; values are scalars or arrays of scalars.
func checkKeys(line []byte, keys map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errNotStrict
	}
	seen := make(map[string]bool, len(keys))
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok || !keys[key] || seen[key] {
			return errNotStrict
		}
		seen[key] = true
		if err := skipValue(dec); err != nil {
			return err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return errNotStrict
	}
	return nil
}

// skipValue consumes a scalar or an array of scalars.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil || tok == json.Delim('{') {
		return errNotStrict
	}
	if tok != json.Delim('[') {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if _, isDelim := tok.(json.Delim); err != nil || isDelim {
			return errNotStrict
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return errNotStrict
	}
	return nil
}
