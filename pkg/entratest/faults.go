package entratest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Failure is an injected error response.
//
// On STS routes Code is the AADSTS number ("7000229", "AADSTS7000229" works too) and the
// body is the real AADSTS error JSON; on Graph routes Code is the Graph error code
// ("ServiceUnavailable", "Request_ResourceNotFound", ...) inside the Graph error envelope.
// Message defaults to a generic text. Status 0 with Code "reset" closes the connection
// without any response (a TCP reset); note that Go's HTTP client may silently retry an
// idempotent request on a reused connection, in which case the retry is served normally.
// RetryAfter, when set, adds a Retry-After header in whole seconds (rounded up, at least 1),
// as the real services send it; there is no millisecond header (real Graph sends none).
type Failure struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// CodeReset is the Failure code that drops the connection instead of answering.
const CodeReset = "reset"

type pendingFailure struct {
	failure Failure
	left    int
}

// FailNext makes the next request to route (a name from Routes) fail with f. Failures on
// one route are served in the order they were queued. It panics on an unknown route name,
// which is a bug in the test.
func (s *Server) FailNext(route string, f Failure) { s.FailRepeat(route, 1, f) }

// FailRepeat makes the next n requests to route fail with f, e.g. a burst of three 503s.
// It panics on an unknown route name.
func (s *Server) FailRepeat(route string, n int, f Failure) {
	if !knownRoute(route) {
		panic(fmt.Sprintf("entratest: FailRepeat: unknown route %q (see entratest.Routes)", route))
	}
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[route] = append(s.failures[route], &pendingFailure{failure: f, left: n})
}

// Throttle makes the next n Graph requests (any route under /v1.0) fail with 429
// TooManyRequests. Each carries Retry-After in whole seconds (rounded up, at least 1), the
// only form real Graph sends (Graph throttling guidance): a client honouring it waits at
// least a second, so no test can prove a sub-second backoff real Graph never allows.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleLeft = n
	s.throttleAfter = retryAfter
}

// takeFault consumes the fault, if any, that applies to this request.
func (s *Server) takeFault(req request) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.area == areaGraph && s.throttleLeft > 0 {
		s.throttleLeft--
		return Failure{
			Status:     http.StatusTooManyRequests,
			Code:       "TooManyRequests",
			Message:    "Too many requests; the application has been throttled.",
			RetryAfter: s.throttleAfter,
		}, true
	}
	queue := s.failures[req.name]
	if len(queue) == 0 {
		return Failure{}, false
	}
	f := queue[0].failure
	queue[0].left--
	if queue[0].left == 0 {
		queue = queue[1:]
	}
	if len(queue) == 0 {
		delete(s.failures, req.name)
	} else {
		s.failures[req.name] = queue
	}
	return f, true
}

// injectFault answers the request with a pending fault; false when there is none.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, req request) bool {
	f, ok := s.takeFault(req)
	if !ok {
		return false
	}
	s.writeFault(w, r, req, f)
	return true
}

// writeFault answers the request with the failure f.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, req request, f Failure) {
	if f.Status == 0 && f.Code == CodeReset {
		resetConnection(w)
		return
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	if f.RetryAfter > 0 {
		setRetryAfter(w.Header(), f.RetryAfter)
	}
	if req.area == areaSTS {
		s.writeSTSError(w, r, injectedSTSError(f))
		return
	}
	if req.area == areaOIDC {
		writeOIDCError(w, f.Status, f.Message)
		return
	}
	code, message := f.Code, f.Message
	if code == "" {
		code = http.StatusText(f.Status)
	}
	if message == "" {
		message = "Injected failure."
	}
	s.writeGraphError(w, r, &graphError{status: f.Status, code: code, message: message})
}

// setRetryAfter sets Retry-After in whole seconds, rounded up, at least 1. Real Graph and
// Entra ID send no retry-after-ms or x-ms-retry-after-ms (Graph throttling guidance; the
// azure-sdk-for-go recordings show none), so neither does the fake.
func setRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(d)))
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// resetConnection drops the client's TCP connection without a response, with SO_LINGER 0
// so the peer sees a reset rather than a clean close.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
