package registry

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status and one CLI exit message in the
// adapters; the domain never speaks HTTP.
const (
	ECONFLICT     = "conflict"     // the action conflicts with the current state
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed
	EINTERNAL     = "internal"     // a fault the caller cannot fix
	EINVALID      = "invalid"      // the input is wrong
	ENOTFOUND     = "not_found"    // the thing does not exist (or is not yours)
	EUNAUTHORIZED = "unauthorized" // missing or unknown credentials
	EUNAVAILABLE  = "unavailable"  // temporarily unable, for example no epoch key
)

// Error is the domain error. Message is safe to show to the caller: it never
// holds contact data, tokens or keys. Field names the input field at fault,
// when there is one. Fields lists every field at fault when validation found
// several (Field and Message are then those of the first), so that a form
// can mark all of them at once.
type Error struct {
	Code    string
	Message string
	Field   string
	Fields  []FieldIssue
}

// FieldIssue is one field at fault and what is wrong with it.
type FieldIssue struct {
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("registry error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("registry error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID *Error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the first *Error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Invalid collects the field errors of a validation: nil when there are
// none, else one EINVALID *Error naming the first field in Field and
// Message and every field in Fields. Errors that are not field errors are
// returned as they are, first come.
func Invalid(errs ...error) error {
	var out *Error
	for _, err := range errs {
		var e *Error
		switch {
		case err == nil:
			continue
		case !errors.As(err, &e) || e.Code != EINVALID || e.Field == "":
			return err
		case out == nil:
			out = &Error{Code: EINVALID, Field: e.Field, Message: e.Message}
		}
		out.Fields = append(out.Fields, issuesOf(e)...)
	}
	if out == nil {
		return nil
	}
	return out
}

func issuesOf(e *Error) []FieldIssue {
	if len(e.Fields) > 0 {
		return e.Fields
	}
	return []FieldIssue{{Field: e.Field, Message: e.Message}}
}

// ErrorFields returns every field at fault of the first *Error in err's
// chain: its Fields, or its Field alone, or nil.
func ErrorFields(err error) []FieldIssue {
	var e *Error
	if errors.As(err, &e) && e.Field != "" {
		return issuesOf(e)
	}
	return nil
}

// ErrorField returns the field named by the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
