package jepsen

import (
	"errors"
	"math/rand/v2"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"powermail/jepsen/check"
)

// sendRemote sends one message to the Remote as a node's queue would.
func sendRemote(t *testing.T, addr, from string, body []byte) error {
	t.Helper()
	return smtp.SendMail(addr, nil, from, []string{"dest0@" + RemoteDomain}, body)
}

func withReceived(b []byte) []byte {
	return append([]byte("Received: from n1.jepsen.test by n1.jepsen.test\r\n"), b...)
}

func TestRemoteRecordsWhatArrives(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      RemoteConfig
		mangle   func([]byte) []byte
		wantType check.OpType
		wantErr  string // prefix of the arrive op's Error
		arrived  bool
	}{
		{"ok", RemoteConfig{}, withReceived, check.OK, "", true},
		{"451", RemoteConfig{TempFail: 1}, withReceived, check.Fail, "", false},
		{"lost ack", RemoteConfig{Drop: 1}, withReceived, check.Info, "", true},
		{"no received line", RemoteConfig{}, func(b []byte) []byte { return b }, check.OK, "corrupt: no Received", true},
		{"damaged body", RemoteConfig{}, func(b []byte) []byte {
			return withReceived([]byte(strings.Replace(string(b), "lazy dog", "lazy cat", 1)))
		}, check.OK, "corrupt: body line", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := check.NewRecorder(nil)
			r, err := StartRemote(rec, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			id := "<q0.1.s1@jepsen.test>"
			msg := message(rand.New(rand.NewPCG(1, 2)), []string{fwdAddr(0)}, id)
			err = sendRemote(t, r.Addr, "SRS0=x=AB=client.test=c@jepsen.test", tc.mangle(msg))
			var te *textproto.Error
			switch tc.wantType {
			case check.OK:
				if err != nil {
					t.Fatalf("send: %v", err)
				}
			case check.Fail:
				if !errors.As(err, &te) || te.Code != 451 {
					t.Fatalf("send: %v, want 451", err)
				}
			case check.Info:
				if err == nil || errors.As(err, &te) {
					t.Fatalf("send: %v, want a lost connection", err)
				}
			}
			h := rec.History()
			if len(h) != 2 || h[1].Type != tc.wantType || h[1].MsgID != id || !strings.HasPrefix(h[1].Error, tc.wantErr) ||
				(tc.wantErr == "" && h[1].Error != "") || h[1].From == "" || len(h[1].To) != 1 {
				t.Fatalf("history %+v", h)
			}
			if r.Arrived(id, "DEST0@remote.test") != tc.arrived {
				t.Errorf("Arrived = %v, want %v", !tc.arrived, tc.arrived)
			}
		})
	}
}
