package node

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// The admin API's raw message is checked against the body's hash only
// once its last byte was read: a local copy damaged behind valid chunk
// checksums (or a streamed one from a replica) fails only then. Such a
// body must not end as a whole 200 response, or the operator (or a
// script) keeps the damaged bytes as the message: the response is cut
// short of its Content-Length, and the client sees the transfer fail.
func TestRawMessageOfADamagedBodyIsCut(t *testing.T) {
	c, _, h, body := fullNodeWithLargeBody(t)
	ctx := ctxT(t, 30*time.Second)
	holder := c.nodes["n1"]
	if has, _, err := holder.bodies.Has(ctx, h); err != nil || !has {
		rec, _ := holder.State().Body(h.String())
		holder = c.nodes[rec.Replicas[0]]
	}
	if err := holder.bodies.DamageKeepCRC(ctx, h, 1); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+holder.AdminAddr()+"/v1/mailboxes/a@example.com/messages/1/raw", nil)
	req.Header.Set("Authorization", "Bearer "+string(testSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // refused before the response: fine
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && err == nil {
		t.Fatalf("a damaged body was served whole: 200, %d bytes (the body has %d), no error", len(got), len(body))
	}
}
