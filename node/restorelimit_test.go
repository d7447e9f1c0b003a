package node

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// restoreClusterWith is restoreCluster with a tweak of the node's config.
func restoreClusterWith(t *testing.T, tweak func(*Config)) *Node {
	t.Helper()
	c := newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
		tweak(cfg)
	})
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	return l
}

// restoreOver posts tar to the admin API's restore of a@example.com.
func restoreOver(t *testing.T, n *Node, query string, tar *bytes.Buffer) (int, string) {
	t.Helper()
	return adminDo(t, n, "POST", "/v1/mailboxes/a@example.com/restore"+query, string(testSecret), tar.String())
}

// A restore's max_bytes above the node's ceiling (RestoreMaxBytes) is
// refused with 400 naming the ceiling, before the archive is read; at
// the ceiling it is taken.
func TestRestoreMaxBytesCeiling(t *testing.T) {
	n := restoreClusterWith(t, func(cfg *Config) { cfg.RestoreMaxBytes = 1 << 20 })
	msg := tarEntry{name: "Maildir/cur/1700000000.M1.h:2,S", content: "Subject: x\r\n\r\nhello\r\n"}
	code, out := restoreOver(t, n, fmt.Sprintf("?max_bytes=%d", 1<<20+1), buildTar(t, msg))
	if code != 400 || !strings.Contains(out, "1048576") {
		t.Fatalf("max_bytes above the ceiling: %d %s", code, out)
	}
	if code, out := restoreOver(t, n, fmt.Sprintf("?max_bytes=%d", 1<<20), buildTar(t, msg)); code != 200 || !strings.Contains(out, `"added":1`) {
		t.Fatalf("max_bytes at the ceiling: %d %s", code, out)
	}
	if DefaultRestoreMaxBytesCeiling < DefaultRestoreMaxBytes {
		t.Fatalf("the default ceiling %d is below the default limit %d", DefaultRestoreMaxBytesCeiling, DefaultRestoreMaxBytes)
	}
}

// A message larger than RestoreMemoryBytes goes through a spool file
// rather than memory, and is stored whole; it is still recognised as a
// duplicate, and a hard link to it adds it again in the link's folder.
func TestRestoreSpoolsLargeMessages(t *testing.T) {
	n := restoreClusterWith(t, func(cfg *Config) { cfg.RestoreMemoryBytes = 4 << 10 })
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef", 16<<10) + "\r\n"
	small := "Subject: small\r\n\r\nhi\r\n"
	tar := buildTar(t,
		tarEntry{name: "Maildir/cur/1700000000.M1.h:2,S", content: big},
		tarEntry{name: "Maildir/cur/1700000001.M2.h:2,S", content: small},
		tarEntry{name: "Maildir/cur/1700000002.M3.h:2,", content: big},
		tarEntry{name: "Maildir/.Archive/cur/1700000000.M1.h:2,S", link: "Maildir/cur/1700000000.M1.h:2,S"},
	)
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", tar, 0)
	if err != nil || res.Added != 3 || res.Duplicates != 1 {
		t.Fatalf("restore: %+v %v, want 3 added and 1 duplicate", res, err)
	}
	for _, folder := range []string{"INBOX", "Archive"} {
		v, err := n.View(ctxT(t, 10*time.Second), "a@example.com", folder)
		if err != nil || len(v.Messages) == 0 {
			t.Fatalf("%s: %+v %v", folder, v, err)
		}
		rd, err := n.OpenBody(ctxT(t, 10*time.Second), v.Messages[0].Hash)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		io.Copy(&got, rd)
		rd.Close()
		if got.String() != big {
			t.Fatalf("%s's first message: %d bytes, want the %d of the large one", folder, got.Len(), len(big))
		}
	}
}
