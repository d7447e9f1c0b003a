package frontend

import "time"

// SetIMAPIdleTimeoutForTest sets the autologout of srv's sessions below
// RFC 9051's 30 minutes, which IMAPConfig does not allow, so that a test
// can wait for it. Call it before Serve.
func SetIMAPIdleTimeoutForTest(srv *IMAPServer, d time.Duration) {
	srv.cfg.IdleTimeout = d
}
