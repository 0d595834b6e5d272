package httpapi

import "net/http"

// HTTPServer returns the underlying http.Server, for tests of its limits.
func (s *Server) HTTPServer() *http.Server { return s.http }
