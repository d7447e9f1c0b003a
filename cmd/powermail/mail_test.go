package main

import (
	"log/slog"
	"net"
	"syscall"
	"testing"

	"github.com/spf13/pflag"
)

// SMTP connections are accepted without TCP keepalive (listenSMTP).
func TestSMTPListenerHasNoKeepalive(t *testing.T) {
	ln, err := listenSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if on != 0 {
		t.Fatalf("SO_KEEPALIVE = %d on an accepted SMTP connection, want 0", on)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512K": 512 << 10, "10M": 10 << 20,
		"10MiB": 10 << 20, "2gb": 2 << 30, " 1T ": 1 << 40, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "B", "I", "iB", "M", "-1", "1X", "1.5G", "9999999999T", "10 M"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// --submission-send-as-aliases is on unless turned off, and reaches the
// submission listener's configuration only.
func TestSendAsAliasesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		kind string
		off  bool
	}{
		{nil, "submission", false},
		{[]string{"--submission-send-as-aliases=false"}, "submission", true},
		{[]string{"--submission-send-as-aliases=false"}, "smtp", false},
	} {
		var m mailFlags
		fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
		m.register(fl)
		if err := fl.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := m.config(slog.Default(), tc.kind, nil, nil).NoSendAsAliases; got != tc.off {
			t.Errorf("%q on %s: NoSendAsAliases %v, want %v", tc.args, tc.kind, got, tc.off)
		}
	}
}
