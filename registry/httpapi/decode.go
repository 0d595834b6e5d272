package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cityhall/registry/registry"
)

// decodeStrict parses body, which must hold exactly one JSON object, into
// dst, a pointer to a struct whose fields carry json tags (struct fields and
// slices of structs are decoded as strictly, their fields named by JSON
// Pointer paths such as "companions/1/phone"). It refuses, with
// an EINVALID *registry.Error naming the field where there is one: invalid
// UTF-8, malformed JSON, anything but an object, duplicate keys at any
// depth, keys that are not exactly a field's json name (encoding/json would
// match them case-insensitively), values of the wrong type (null only for
// pointer fields), control characters in strings, and trailing data. Error
// messages name fields, never echo values.
func decodeStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return registry.Errorf(registry.EINVALID, "The body is not valid UTF-8.")
	}
	if err := checkSyntax(body); err != nil {
		return err
	}
	return decodeFields(body, reflect.ValueOf(dst).Elem())
}

// frame is one open object or array during checkSyntax's walk.
type frame struct {
	object    bool
	expectKey bool            // objects: the next token is a key
	keys      map[string]bool // objects: keys seen
	lastKey   string          // objects: the key whose value comes next
	index     int             // arrays: index of the next element
	path      string          // JSON Pointer of the container, without "#/"
}

// checkSyntax walks the tokens of body: one object, no duplicate keys in any
// object, nothing after it.
func checkSyntax(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err, dec)
	} else if tok != json.Delim('{') {
		return registry.Errorf(registry.EINVALID, "The body must be a JSON object.")
	}
	stack := []frame{{object: true, expectKey: true, keys: map[string]bool{}}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err, dec)
		}
		if stack, err = step(stack, tok); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return registry.Errorf(registry.EINVALID, "The body holds data after the JSON object.")
	}
	return nil
}

// step applies one token to the stack of open containers.
func step(stack []frame, tok json.Token) ([]frame, error) {
	top := &stack[len(stack)-1]
	switch {
	case tok == json.Delim('}') || tok == json.Delim(']'):
		return valueDone(stack[:len(stack)-1]), nil
	case top.object && top.expectKey:
		key := tok.(string) // the decoder guarantees object keys are strings
		path := joinPath(top.path, key)
		if top.keys[key] {
			return nil, registry.FieldError(path, "The key %q occurs more than once.", clip(path))
		}
		top.keys[key], top.expectKey, top.lastKey = true, false, key
		return stack, nil
	case tok == json.Delim('{'):
		return append(stack, frame{object: true, expectKey: true, keys: map[string]bool{}, path: childPath(top)}), nil
	case tok == json.Delim('['):
		return append(stack, frame{path: childPath(top)}), nil
	}
	return valueDone(stack), nil
}

// valueDone records that a value of the innermost container is complete.
func valueDone(stack []frame) []frame {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expectKey = true
	} else if n > 0 {
		stack[n-1].index++
	}
	return stack
}

// childPath is the path of a container opened inside top: the key it is the
// value of, or its index in an array.
func childPath(top *frame) string {
	if top.object {
		return joinPath(top.path, top.lastKey)
	}
	return joinPath(top.path, strconv.Itoa(top.index))
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// joinPath appends a JSON Pointer reference token (RFC 6901) to parent.
func joinPath(parent, token string) string {
	token = pointerEscaper.Replace(token)
	if parent == "" {
		return token
	}
	return parent + "/" + token
}

// clip shortens an echoed key so that a client cannot make errors huge.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 64 {
		return s
	}
	return string([]rune(s)[:64]) + "…"
}

func syntaxError(err error, dec *json.Decoder) error {
	var se *json.SyntaxError
	switch {
	case err == io.EOF:
		return registry.Errorf(registry.EINVALID, "The body is empty; expected a JSON object.")
	case errors.As(err, &se):
		return registry.Errorf(registry.EINVALID, "The body is not valid JSON (error at byte %d).", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return registry.Errorf(registry.EINVALID, "The body is not valid JSON: it ends early.")
	}
	return registry.Errorf(registry.EINVALID, "The body is not valid JSON (error at byte %d).", dec.InputOffset())
}

// decodeFields decodes each member of the (syntax-checked) object into the
// struct field with exactly that json name.
func decodeFields(body []byte, dst reflect.Value) error {
	return decodeObject(body, dst, "")
}

// decodeObject decodes the object raw, found at path (a JSON Pointer
// without "#/"; "" for the body), into the struct dst, field by field.
func decodeObject(raw []byte, dst reflect.Value, path string) error {
	fields := jsonFields(dst.Type())
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return syntaxError(err, dec)
	} else if tok != json.Delim('{') {
		return registry.FieldError(path, "%s must be an object.", path)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err, dec)
		}
		name := joinPath(path, tok.(string))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err, dec)
		}
		index, ok := fields[tok.(string)]
		if !ok {
			return registry.FieldError(name, "Unknown field %q.", clip(name))
		}
		if err := decodeValue(raw, dst.FieldByIndex(index), name); err != nil {
			return err
		}
	}
	return nil
}

// decodeArray decodes the array raw, found at path, into the slice dst of
// structs, element by element.
func decodeArray(raw []byte, dst reflect.Value, path string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return syntaxError(err, dec)
	} else if tok != json.Delim('[') {
		return registry.FieldError(path, "%s must be an array.", path)
	}
	out := reflect.MakeSlice(dst.Type(), 0, 0)
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err, dec)
		}
		elem := reflect.New(dst.Type().Elem()).Elem()
		if err := decodeValue(raw, elem, joinPath(path, strconv.Itoa(i))); err != nil {
			return err
		}
		out = reflect.Append(out, elem)
	}
	dst.Set(out)
	return nil
}

// jsonFields maps the json names of t's exported fields to their index
// paths. The fields of an embedded struct without a json name count as
// t's own, as in encoding/json.
func jsonFields(t reflect.Type) map[string][]int {
	m := make(map[string][]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for n, index := range jsonFields(f.Type) {
				m[n] = append([]int{i}, index...)
			}
			continue
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		m[name] = []int{i}
	}
	return m
}

var timeType = reflect.TypeFor[time.Time]()

// decodeValue decodes one member's value, found at path name, into field
// v: objects into structs and arrays of objects into slices of structs
// with the same strictness as the body, anything else with encoding/json.
func decodeValue(raw json.RawMessage, v reflect.Value, name string) error {
	switch {
	case string(raw) == "null":
		if v.Kind() != reflect.Pointer {
			return registry.FieldError(name, "%s must be %s, not null.", name, describe(v.Type()))
		}
		v.SetZero()
		return nil
	case v.Kind() == reflect.Struct && v.Type() != timeType:
		return decodeObject(raw, v, name)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		return decodeArray(raw, v, name)
	}
	if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
		return registry.FieldError(name, "%s must be %s.", name, describe(v.Type()))
	}
	if v.Kind() == reflect.String && strings.IndexFunc(v.String(), unicode.IsControl) >= 0 {
		return registry.FieldError(name, "%s contains control characters.", name)
	}
	return nil
}

// describe names the JSON a field of type t expects.
func describe(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "a date and time in RFC 3339 format, for example 2025-03-01T09:30:00+01:00"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "an array"
	case t.Kind() == reflect.Struct:
		return "an object"
	}
	return "a " + t.Kind().String()
}
