package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"powermail/node"
)

// renewWarning is how close to its expiry a certificate in use is logged
// as a warning, at start and on every reload.
const renewWarning = 14 * 24 * time.Hour

// tlsSet is the TLS files a server reads again on SIGHUP, by use
// ("client": SMTP, LMTP, IMAP and POP3; "cluster"; "admin"); nil entries
// are off.
type tlsSet map[string]*node.TLSFiles

// register adds each certificate's expiry gauge to reg.
func (s tlsSet) register(reg prometheus.Registerer) error {
	for use, f := range s {
		if f != nil {
			if err := reg.Register(f.ExpiryGauge(use)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reload reads every set of files again. One that fails keeps serving
// what it had, and says why.
func (s tlsSet) reload(log *slog.Logger) {
	loaded := false
	for use, f := range s {
		if f == nil {
			continue
		}
		loaded = true
		if err := f.Reload(); err != nil {
			log.Error("TLS files not reloaded; the previous certificate stays in use", "use", use, "err", err)
			continue
		}
		s.logCert(log, use, "TLS certificate reloaded")
	}
	if !loaded {
		log.Info("SIGHUP: no TLS files to reload")
	}
}

// logCert logs the certificate in use, as a warning when it is due for
// renewal.
func (s tlsSet) logCert(log *slog.Logger, use, msg string) {
	f := s[use]
	leaf, left := f.Leaf(), f.ExpiresIn(time.Now())
	level := slog.LevelInfo
	if left < renewWarning {
		level = slog.LevelWarn
		msg += "; it expires soon"
	}
	log.Log(context.Background(), level, msg, "use", use, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// reloadOnHangup reloads s on every SIGHUP until ctx ends. SIGHUP is
// caught even without TLS files, so that a habitual `kill -HUP` never
// stops a node.
func reloadOnHangup(ctx context.Context, s tlsSet, log *slog.Logger) {
	for use, f := range s {
		if f != nil {
			s.logCert(log, use, "TLS certificate in use")
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reload(log)
			}
		}
	}()
}
