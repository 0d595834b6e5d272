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
// when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
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

// ErrorField returns the field named by the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
