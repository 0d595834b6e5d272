// Command registry runs the contact-tracing visitor registry: the intake
// service, the data-protection officer's tools (tokens, purges, trace
// request approvals, audit) and the health office's decryption tool.
//
// Run `registry --help` for the commands; every flag can also be set with a
// REGISTRY_* environment variable (see docs/operations.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cityhall/registry/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).root().ExecuteContext(ctx)
	stop()
	var exit *exitError
	if errors.As(err, &exit) {
		fmt.Fprintf(os.Stderr, "registry: %s\n", exit.msg)
		os.Exit(exit.code)
	}
	if err != nil {
		printError(err)
		os.Exit(1)
	}
}

// hintError is an error with a suggestion for the operator, printed on its
// own line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

func printError(err error) {
	msg := err.Error()
	var re *registry.Error
	if errors.As(err, &re) {
		msg = re.Message
		if re.Field != "" {
			msg = re.Field + ": " + msg
		}
	}
	fmt.Fprintf(os.Stderr, "registry: error: %s\n", msg)
	// Every further field at fault, each on a line of its own.
	if fields := registry.ErrorFields(err); len(fields) > 1 {
		for _, f := range fields[1:] {
			fmt.Fprintf(os.Stderr, "registry: error: %s: %s\n", f.Field, f.Message)
		}
	}
	var he *hintError
	if errors.As(err, &he) {
		fmt.Fprintf(os.Stderr, "registry: hint: %s\n", he.hint)
	}
}
