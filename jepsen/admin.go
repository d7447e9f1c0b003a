package jepsen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// AdminClient talks to any node's admin API as an operator would: HTTP/JSON
// with the cluster secret as bearer token. It keeps no per-node state.
type AdminClient struct {
	token string
	http  *http.Client
}

// NewAdminClient returns a client that sends token with every request.
// Every call also takes a context; give it a deadline, because a paused node
// accepts connections and never answers.
func NewAdminClient(token string) *AdminClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &AdminClient{token: token, http: &http.Client{Transport: tr}}
}

// HTTPError is a reply from the admin API with a non-2xx status: the node
// answered, so the request definitely reached it.
type HTTPError struct {
	Status  int
	Code    string // the API's error code ("not_found", "unavailable", ...)
	Message string
}

func (e *HTTPError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("http %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("http %d %s: %s", e.Status, e.Code, e.Message)
}

// Get fetches path from the node at addr and decodes the JSON reply into out
// (unless out is nil).
func (a *AdminClient) Get(ctx context.Context, addr, path string, out any) error {
	raw, err := a.do(ctx, "GET", addr, path, nil)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("GET %s on %s: decode: %w", path, addr, err)
	}
	return nil
}

// Post sends in as JSON to path on the node at addr and decodes the reply
// into out (unless out is nil).
func (a *AdminClient) Post(ctx context.Context, addr, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	raw, err := a.do(ctx, "POST", addr, path, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("POST %s on %s: decode: %w", path, addr, err)
	}
	return nil
}

// Delete sends DELETE path to the node at addr.
func (a *AdminClient) Delete(ctx context.Context, addr, path string) error {
	_, err := a.do(ctx, "DELETE", addr, path, nil)
	return err
}

// Raw fetches path from the node at addr and returns the body unparsed.
func (a *AdminClient) Raw(ctx context.Context, addr, path string) ([]byte, error) {
	return a.do(ctx, "GET", addr, path, nil)
}

func (a *AdminClient) do(ctx context.Context, method, addr, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: read reply: %w", method, path, addr, err)
	}
	if resp.StatusCode/100 != 2 {
		he := &HTTPError{Status: resp.StatusCode, Message: string(bytes.TrimSpace(raw))}
		var ae struct {
			Code    string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &ae) == nil && ae.Code != "" {
			he.Code, he.Message = ae.Code, ae.Message
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, addr, he)
	}
	return raw, nil
}

// Close drops idle connections.
func (a *AdminClient) Close() { a.http.CloseIdleConnections() }

// ClusterStatus is the part of GET /v1/cluster/status the harness uses.
type ClusterStatus struct {
	Leader string `json:"leader"`
	Health string `json:"health"` // healthy, degraded, unavailable
	Nodes  []struct {
		ID        string `json:"id"`
		Role      string `json:"role"`
		Reachable bool   `json:"reachable"`
	} `json:"nodes"`
}

// Status asks the node at addr for its view of the cluster.
func (a *AdminClient) Status(ctx context.Context, addr string) (ClusterStatus, error) {
	var st ClusterStatus
	err := a.Get(ctx, addr, "/v1/cluster/status", &st)
	return st, err
}

// Ready reports whether the node at addr passes GET /readyz: it knows a
// leader and has applied everything the leader had applied (the read-index
// barrier), so it can serve linearizable reads and accept mail.
func (a *AdminClient) Ready(ctx context.Context, addr string) error {
	_, err := a.do(ctx, "GET", addr, "/readyz", nil)
	return err
}

// isReply reports whether err is an answer from the node (HTTP status),
// rather than a timeout or a lost connection.
func isReply(err error) bool {
	var he *HTTPError
	return errors.As(err, &he)
}
