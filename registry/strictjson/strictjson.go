// Package strictjson is the registry's one parser of JSON that comes from
// outside: request bodies of the HTTP API, the lines of an export bundle and
// the sealed contact inside a record. One set of rules holds for all of
// them:
//
//   - the input is exactly one JSON object (RFC 8259), valid UTF-8, with
//     nothing but white space after it;
//   - every key is exactly the json name of a field of the target struct
//     (encoding/json would also take "SITE" for "site"), and occurs once;
//   - every value has the field's type: null only for pointer fields,
//     integers without fraction or exponent, times in RFC 3339;
//   - every string, wherever it sits (a plain field, a pointer, a slice
//     element, a key), holds no lone surrogate escape (\ud800) and no
//     character registry.BadRune refuses: no control, format, separator or
//     private-use character.
//
// The decoder reads the input once and decodes straight into the target.
// It follows the type: a value of the wrong kind or under an unknown key
// is refused where it starts, so nesting can never go deeper than the
// target type allows and the cost of any input is linear in its length
// with memory bounded by the type, not by the input. Errors are EINVALID
// *registry.Error values whose Field is the JSON Pointer of the place at
// fault (RFC 6901, without the leading "/": "companions/1/phone"); their
// messages name places and characters, never values.
package strictjson

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cityhall/registry/registry"
)

// Decode parses data, which must hold exactly one JSON object, into dst, a
// non-nil pointer to a struct. Supported field types are string, bool, the
// signed integers, time.Time, []byte (standard base64, as encoding/json
// writes it), structs, and pointers to and slices of these; embedded
// structs without a json name contribute their fields, as in encoding/json.
// Fields without a json tag are matched by their Go name; "-" skips a
// field. A slice field tagged strictjson:"max=N" takes at most N elements. Decode panics when dst is not a pointer to a struct of supported
// fields: that is a programming error.
//
// On error dst may be partly filled; discard it.
func Decode(data []byte, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("strictjson: Decode needs a non-nil pointer to a struct, not %T", dst))
	}
	p := planOf(v.Elem().Type())
	if !utf8.Valid(data) {
		return registry.Errorf(registry.EINVALID, "The JSON is not valid UTF-8.")
	}
	d := &decoder{data: data}
	d.skipSpace()
	if d.pos == len(data) {
		return registry.Errorf(registry.EINVALID, "The JSON is empty; expected an object.")
	}
	if data[d.pos] != '{' {
		return registry.Errorf(registry.EINVALID, "The JSON must be an object.")
	}
	if err := d.object(p, v.Elem()); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(data) {
		return registry.Errorf(registry.EINVALID, "The JSON holds data after the object (at byte %d).", d.pos)
	}
	return nil
}

// kind is what a plan decodes.
type kind uint8

const (
	kString kind = iota
	kBool
	kInt
	kTime
	kBytes
	kStruct
	kSlice
	kPointer
)

// plan is how to decode one Go type.
type plan struct {
	kind   kind
	typ    reflect.Type
	elem   *plan            // kSlice, kPointer
	fields map[string]field // kStruct
	nField int              // kStruct: number of fields, for duplicate detection
	// max (kSlice) is the most elements the field takes (its tag
	// strictjson:"max=N"), 0 for no limit: the decoder refuses the next
	// one where it starts, before any work on it.
	max int
}

type field struct {
	index   []int
	ordinal int
	plan    *plan
}

var (
	plans    sync.Map // reflect.Type → *plan
	timeType = reflect.TypeFor[time.Time]()
)

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p, _ := plans.LoadOrStore(t, buildPlan(t))
	return p.(*plan)
}

func buildPlan(t reflect.Type) *plan {
	switch {
	case t == timeType:
		return &plan{kind: kTime, typ: t}
	case t.Kind() == reflect.String:
		return &plan{kind: kString, typ: t}
	case t.Kind() == reflect.Bool:
		return &plan{kind: kBool, typ: t}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return &plan{kind: kInt, typ: t}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return &plan{kind: kBytes, typ: t}
	case t.Kind() == reflect.Slice:
		return &plan{kind: kSlice, typ: t, elem: buildPlan(t.Elem())}
	case t.Kind() == reflect.Pointer:
		return &plan{kind: kPointer, typ: t, elem: buildPlan(t.Elem())}
	case t.Kind() == reflect.Struct:
		p := &plan{kind: kStruct, typ: t, fields: map[string]field{}}
		addFields(p, t, nil)
		return p
	}
	panic("strictjson: unsupported field type " + t.String())
}

// addFields adds t's fields to p, those of embedded structs without a json
// name as p's own.
func addFields(p *plan, t reflect.Type, prefix []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		index := append(append([]int{}, prefix...), i)
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			addFields(p, f.Type, index)
			continue
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		fp := buildPlan(f.Type)
		if m, ok := strings.CutPrefix(f.Tag.Get("strictjson"), "max="); ok {
			n, err := strconv.Atoi(m)
			if err != nil || n <= 0 || fp.kind != kSlice {
				panic(fmt.Sprintf("strictjson: field %s: the tag max=N needs a positive N on a slice", f.Name))
			}
			limited := *fp
			limited.max = n
			fp = &limited
		}
		p.fields[name] = field{index: index, ordinal: p.nField, plan: fp}
		p.nField++
	}
}

// decoder is one pass over the input. path holds the keys and indexes
// leading to the value being decoded; its length is bounded by the nesting
// of the target type, and it becomes a string only for an error.
type decoder struct {
	data []byte
	pos  int
	path []step
}

type step struct {
	key   string
	index int // -1 for a key
}

func (d *decoder) push(key string, index int) { d.path = append(d.path, step{key, index}) }
func (d *decoder) pop()                       { d.path = d.path[:len(d.path)-1] }

// where is the JSON Pointer of the current place, without the leading "/".
func (d *decoder) where() string {
	var b strings.Builder
	for i, s := range d.path {
		if i > 0 {
			b.WriteByte('/')
		}
		if s.index >= 0 {
			b.WriteString(strconv.Itoa(s.index))
		} else {
			b.WriteString(pointerToken(s.key))
		}
	}
	return b.String()
}

// fail returns an EINVALID error at the current place. The message is
// "<place> <what>", or "The JSON <what>" at the top level.
func (d *decoder) fail(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	place := d.where()
	if place == "" {
		return registry.Errorf(registry.EINVALID, "The JSON %s", msg)
	}
	return registry.FieldError(place, "%s %s", place, msg)
}

func (d *decoder) syntax() error {
	if d.pos >= len(d.data) {
		return d.fail("ends early.")
	}
	return d.fail("is not valid JSON (at byte %d).", d.pos)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value decodes the value at d.pos into v by p.
func (d *decoder) value(p *plan, v reflect.Value) error {
	d.skipSpace()
	if d.pos == len(d.data) {
		return d.syntax()
	}
	if d.data[d.pos] == 'n' {
		if !d.literal("null") {
			return d.syntax()
		}
		if p.kind != kPointer {
			return d.fail("must be %s, not null.", describe(p))
		}
		v.SetZero()
		return nil
	}
	switch p.kind {
	case kPointer:
		if v.IsNil() {
			v.Set(reflect.New(p.typ.Elem()))
		}
		return d.value(p.elem, v.Elem())
	case kStruct:
		if d.data[d.pos] != '{' {
			return d.fail("must be %s.", describe(p))
		}
		return d.object(p, v)
	case kSlice:
		if d.data[d.pos] != '[' {
			return d.fail("must be %s.", describe(p))
		}
		return d.array(p, v)
	case kBool:
		switch {
		case d.literal("true"):
			v.SetBool(true)
		case d.literal("false"):
			v.SetBool(false)
		default:
			return d.fail("must be %s.", describe(p))
		}
		return nil
	case kInt:
		return d.integer(p, v)
	}
	return d.text(p, v)
}

// text decodes a string into a string, time or []byte field.
func (d *decoder) text(p *plan, v reflect.Value) error {
	if d.data[d.pos] != '"' {
		return d.fail("must be %s.", describe(p))
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	switch p.kind {
	case kString:
		v.SetString(s)
	case kTime:
		var t time.Time
		if err := t.UnmarshalText([]byte(s)); err != nil {
			return d.fail("must be %s.", describe(p))
		}
		v.Set(reflect.ValueOf(t))
	case kBytes:
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return d.fail("must be %s.", describe(p))
		}
		v.SetBytes(b)
	}
	return nil
}

func (d *decoder) literal(lit string) bool {
	if !strings.HasPrefix(string(d.data[d.pos:min(len(d.data), d.pos+len(lit))]), lit) {
		return false
	}
	d.pos += len(lit)
	if d.pos < len(d.data) && isWordByte(d.data[d.pos]) {
		d.pos -= len(lit)
		return false
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c >= 0x80
}

// object decodes an object into the struct v; d.pos is at '{'.
func (d *decoder) object(p *plan, v reflect.Value) error {
	d.pos++
	var seen uint64
	var seenMore map[int]bool
	for first := true; ; first = false {
		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax()
		}
		if d.data[d.pos] == '}' && first {
			d.pos++
			return nil
		}
		if d.data[d.pos] != '"' {
			return d.syntax()
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos == len(d.data) || d.data[d.pos] != ':' {
			return d.syntax()
		}
		d.pos++
		f, ok := p.fields[key]
		d.push(key, -1)
		switch {
		case !ok:
			return d.fail("is not a known field.")
		case f.ordinal < 64 && seen&(1<<f.ordinal) != 0, f.ordinal >= 64 && seenMore[f.ordinal]:
			return d.fail("occurs more than once.")
		case f.ordinal < 64:
			seen |= 1 << f.ordinal
		default:
			if seenMore == nil {
				seenMore = map[int]bool{}
			}
			seenMore[f.ordinal] = true
		}
		if err := d.value(f.plan, v.FieldByIndex(f.index)); err != nil {
			return err
		}
		d.pop()
		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntax()
		}
	}
}

// array decodes an array into the slice v; d.pos is at '['.
func (d *decoder) array(p *plan, v reflect.Value) error {
	d.pos++
	out := reflect.MakeSlice(p.typ, 0, 0)
	for i := 0; ; i++ {
		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax()
		}
		if d.data[d.pos] == ']' {
			if i > 0 {
				return d.syntax()
			}
			d.pos++
			break
		}
		if p.max > 0 && i == p.max {
			return d.fail("holds more than %d elements.", p.max)
		}
		out = reflect.Append(out, reflect.Zero(p.typ.Elem()))
		d.push("", i)
		if err := d.value(p.elem, out.Index(i)); err != nil {
			return err
		}
		d.pop()
		d.skipSpace()
		if d.pos == len(d.data) {
			return d.syntax()
		}
		if d.data[d.pos] == ']' {
			d.pos++
			break
		} else if d.data[d.pos] != ',' {
			return d.syntax()
		}
		d.pos++
	}
	v.Set(out)
	return nil
}

// integer decodes a JSON integer (no fraction, no exponent) into v.
func (d *decoder) integer(p *plan, v reflect.Value) error {
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		d.pos++
	}
	digits := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	n := d.pos - digits
	if n == 0 || n > 1 && d.data[digits] == '0' || d.pos < len(d.data) && isWordByte(d.data[d.pos]) {
		d.pos = start
		return d.fail("must be %s.", describe(p))
	}
	i, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, p.typ.Bits())
	if err != nil {
		return d.fail("is out of range.")
	}
	v.SetInt(i)
	return nil
}

// str reads a string token at d.pos (at '"') and returns its value. It
// refuses raw control bytes, bad escapes, lone surrogates and every
// character registry.BadRune refuses.
func (d *decoder) str() (string, error) {
	d.pos++
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			return s, d.checkText(s)
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.pos++
	}
	buf := append(make([]byte, 0, d.pos-start+16), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			s := string(buf)
			return s, d.checkText(s)
		case c < 0x20:
			return "", d.fail("holds a control character (%s).", registry.DescribeRune(rune(c)))
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		r, err := d.escape()
		if err != nil {
			return "", err
		}
		buf = utf8.AppendRune(buf, r)
	}
	return "", d.syntax()
}

// escape decodes one escape sequence at d.pos (at '\').
func (d *decoder) escape() (rune, error) {
	if d.pos+1 >= len(d.data) {
		return 0, d.syntax()
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		d.pos -= 2
		return 0, d.syntax()
	}
	r, ok := d.hex4()
	if !ok {
		return 0, d.syntax()
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	if r < 0xDC00 && d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
		d.pos += 2
		if r2, ok := d.hex4(); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
			return utf16.DecodeRune(r, r2), nil
		}
	}
	return 0, d.fail("holds a lone surrogate escape (%s), which is no character.", registry.DescribeRune(r))
}

func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}

func (d *decoder) checkText(s string) error {
	if r, _, bad := registry.BadRune(s); bad {
		return d.fail("holds an invisible, control or formatting character (%s).", registry.DescribeRune(r))
	}
	return nil
}

// describe names the JSON a plan expects.
func describe(p *plan) string {
	switch p.kind {
	case kPointer:
		return describe(p.elem)
	case kTime:
		return "a date and time in RFC 3339 format, for example 2025-03-01T09:30:00+01:00"
	case kString:
		return "a string"
	case kBool:
		return "true or false"
	case kInt:
		return "an integer"
	case kBytes:
		return "a base64 string"
	case kSlice:
		return "an array"
	}
	return "an object"
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// pointerToken escapes a key for a JSON Pointer (RFC 6901) and makes it
// printable: at most 64 characters, anything outside printable ASCII
// written as \uXXXX, so that an error never carries invisible text.
func pointerToken(key string) string {
	return printable(pointerEscaper.Replace(key))
}

func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n++; n > 64 {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\u%04X`, r)
		}
	}
	return b.String()
}
