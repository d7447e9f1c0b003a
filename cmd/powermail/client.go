package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"powermail/node"
)

// clientFlags are shared by every command that talks to the admin API.
type clientFlags struct {
	addr, token, tokenFile string
	ca                     string
	json                   bool
	timeout                time.Duration
	// timeoutFromEnv: --timeout came from POWERMAIL_TIMEOUT, a default
	// for every command rather than this one's limit.
	timeoutFromEnv bool
}

// timeoutName is how the operator gave the timeout, for messages that
// name it.
func (c *clientFlags) timeoutName() string {
	if c.timeoutFromEnv {
		return "POWERMAIL_TIMEOUT"
	}
	return "--timeout"
}

func (c *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.addr, "addr", "127.0.0.1:8000", "admin API address of any node (https://HOST:PORT where it has --admin-tls-cert)")
	pf.StringVar(&c.ca, "ca", "", "PEM CA certificate(s) to trust for an https:// --addr (default: the system's)")
	pf.StringVar(&c.token, "token", "", "admin token, the cluster secret")
	pf.StringVar(&c.tokenFile, "token-file", "", "file holding the admin token")
	pf.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
}

// lengthen raises the timeout to d for a command that may run long (a
// maintenance round over every body), unless --timeout was given on the
// command line: POWERMAIL_TIMEOUT, set once for every command, is raised
// as the built-in default is.
func (c *clientFlags) lengthen(cmd *cobra.Command, d time.Duration) {
	if f := cmd.Flags().Lookup("timeout"); f == nil || !f.Changed || c.timeoutFromEnv {
		c.timeout = max(c.timeout, d)
	}
}

// apiError mirrors the admin API's error body.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

var errPrefix = map[string]string{
	"unauthorized": "not authorised",
	"no_leader":    "no leader",
	"not_leader":   "no leader",
	"not_found":    "not found",
	"invalid":      "invalid input",
	"exists":       "already exists",
	"not_empty":    "not empty",
	"forward_loop": "forward loop",
	"too_large":    "too large",
	"removed":      "not a member",
}

// Error is the message after the kind of error, said once: a node's
// message may name it already ("domain x already exists"), or carry the
// node's own word for it ("invalid argument: ...").
func (e *apiError) Error() string {
	p, ok := errPrefix[e.Code]
	if !ok {
		p = e.Code
	}
	msg := e.Message
	if e.Code == "invalid" {
		msg = strings.TrimPrefix(msg, "invalid argument: ") // node.ErrInvalidArgument
	}
	if strings.Contains(msg, p) {
		return msg
	}
	return p + ": " + msg
}

// do sends one request and decodes the JSON reply into out.
func (c *clientFlags) do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return c.replyError(resp.Status, raw)
	}
	if out != nil {
		return c.decode(raw, out)
	}
	return nil
}

// decode reads a successful reply. One that is not JSON comes from
// something other than a node's admin API at --addr (a web server on that
// port): say so, rather than print the JSON decoder's complaint about a
// '<'.
func (c *clientFlags) decode(raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s did not answer as a PowerMail admin API does (is --addr a node's admin address?): %w", c.addr, err)
	}
	return nil
}

// replyError is the error a failed reply's body describes. A body that is
// not the admin API's JSON error comes from something else at --addr, or
// from a node's HTTP layer ("Client sent an HTTP request to an HTTPS
// server"): its first line is shown, cut short, and never an HTML page.
func (c *clientFlags) replyError(status string, raw []byte) error {
	e := &apiError{}
	if json.Unmarshal(raw, e) == nil && e.Code != "" {
		return e
	}
	text, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	text = strings.TrimSpace(text)
	switch {
	case text == "" || strings.HasPrefix(text, "<"):
		return fmt.Errorf("%s answered %s, not as a PowerMail admin API does (is --addr a node's admin address?)", c.addr, status)
	case strings.Contains(text, "HTTPS server"):
		return fmt.Errorf("%s answered %s: %s (give --addr https://HOST:PORT)", c.addr, status, text)
	}
	if r := []rune(text); len(r) > 200 {
		text = string(r[:200]) + "..."
	}
	if strings.HasPrefix(status, "404") {
		// Every route the admin API has answers JSON: a plain 404 is a
		// path under --addr, or another server there.
		return fmt.Errorf("%s answered %s: %s (is --addr a node's admin address, HOST:PORT without a path?)", c.addr, status, text)
	}
	return fmt.Errorf("%s answered %s: %s", c.addr, status, text)
}

// send sends one request and returns the response for the caller to read
// (and close).
func (c *clientFlags) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	token, err := c.resolveToken()
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if in != nil {
		if err := checkUTF8(in); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	return c.sendBody(ctx, method, path, body, "application/json", token)
}

// sendBody sends one request with body as it is.
func (c *clientFlags) sendBody(ctx context.Context, method, path string, body io.Reader, contentType, token string) (*http.Response, error) {
	base := c.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var sent atomic.Bool // the request reached the node
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	client, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, interrupted(ctx, method, c.addr)
	}
	if errors.Is(err, context.DeadlineExceeded) && sent.Load() {
		// The node took the request and did not answer in time: say so
		// (a write waits for a raft quorum, a read for the leader to
		// confirm it still leads) rather than blame the network.
		return nil, fmt.Errorf("no answer from %s within %s %v (reads and writes wait for a leader and a quorum of voters: see cluster status): %w",
			c.addr, c.timeoutName(), c.timeout, unwrapURL(err))
	}
	if err != nil && notHTTP(err) {
		// Something answered, not in HTTP: a mail port's greeting, say.
		return nil, fmt.Errorf("%s did not answer in HTTP, as a PowerMail admin API does (is --addr a node's admin address?)", c.addr)
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return nil, fmt.Errorf("cannot reach %s: %w (give --ca FILE, or POWERMAIL_CA, with the CA that issued the node's admin certificate)", c.addr, unwrapURL(err))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.addr, unwrapURL(err))
	}
	return resp, nil
}

// ErrInterrupted: the command was stopped (SIGTERM, ^C) before the node
// answered.
var ErrInterrupted = errors.New("interrupted")

// interrupted is the error of a request cut off by the command's own
// stop, rather than by the node or the network: a write may have been
// made all the same.
func interrupted(ctx context.Context, method, addr string) error {
	err := fmt.Errorf("%w before %s answered (%v)", ErrInterrupted, addr, context.Cause(ctx))
	if method != http.MethodGet {
		err = fmt.Errorf("%w: the change may have been made; check before running it again", err)
	}
	return err
}

// notHTTP reports whether err is net/http's complaint about an answer
// that is no HTTP: "malformed HTTP status code" when the other side's
// greeting is read as the response, "readLoopPeekFailLocked" when it
// came before the request was sent.
func notHTTP(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed HTTP") || strings.Contains(msg, "readLoopPeekFailLocked")
}

// httpClient trusts --ca, or the system's roots without it.
func (c *clientFlags) httpClient() (*http.Client, error) {
	if c.ca == "" {
		return http.DefaultClient, nil
	}
	roots, err := node.LoadCertPool(c.ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *clientFlags) resolveToken() (string, error) {
	switch {
	case c.token != "":
		return c.token, nil
	case c.tokenFile != "":
		raw, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		// Sent empty, it would be refused as a wrong token, sending the
		// operator to compare secrets rather than to the file.
		if token := strings.TrimSpace(string(raw)); token != "" {
			return token, nil
		}
		return "", fmt.Errorf("not authorised: token file %s is empty", c.tokenFile)
	case os.Getenv("POWERMAIL_SECRET") != "":
		return strings.TrimSpace(os.Getenv("POWERMAIL_SECRET")), nil
	}
	return "", errors.New("not authorised: give --token, --token-file or POWERMAIL_TOKEN")
}

// emit prints v as JSON with --json, else as a table.
func (c *clientFlags) emit(cmd *cobra.Command, v any, header []string, rows func() [][]string) error {
	w := cmd.OutOrStdout()
	if c.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows() {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// done prints a confirmation (or {"status":"ok"} with --json).
func (c *clientFlags) done(cmd *cobra.Command, format string, args ...any) error {
	if c.json {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"status": "ok"})
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	return err
}

// pathEsc escapes s as one path segment. "." and ".." are escaped too:
// as they are, the node's router takes them for path steps and
// redirects the request elsewhere, and the refusal the operator should
// see (not a valid domain) never comes.
func pathEsc(s string) string {
	if s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return url.PathEscape(s)
}
