package postgres

import "github.com/lib/pq"

// ExplainServerError is classifyServer for tests.
func ExplainServerError(code, user, db string) string {
	return classifyServer(&pq.Error{Code: pq.ErrorCode(code)}, pq.Config{User: user, Database: db})
}

// ErrorCodeOf is the dialect's classification of a server error, for tests.
func ErrorCodeOf(code string) string {
	return (&dialect{}).ErrorCode(&pq.Error{Code: pq.ErrorCode(code)})
}
