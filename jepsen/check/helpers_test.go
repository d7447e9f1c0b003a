package check

import (
	"fmt"
	"strings"
	"testing"
)

// hb builds histories by hand. Every op is 10ns after the previous one, so
// the order of calls is the order of time.
type hb struct {
	h History
	t int64
}

type mod func(*Op)

func (b *hb) op(p int, typ OpType, f, key string, mods ...mod) *hb {
	b.t += 10
	o := Op{Index: len(b.h), Time: b.t, Process: p, Type: typ, F: f, Key: key, Node: fmt.Sprintf("n%d", p%3+1)}
	for _, m := range mods {
		m(&o)
	}
	b.h = append(b.h, o)
	return b
}

func (b *hb) inv(p int, f, key string, mods ...mod) *hb { return b.op(p, Invoke, f, key, mods...) }
func (b *hb) ok(p int, f, key string, mods ...mod) *hb  { return b.op(p, OK, f, key, mods...) }
func (b *hb) fail(p int, f, key string, mods ...mod) *hb {
	return b.op(p, Fail, f, key, mods...)
}
func (b *hb) info(p int, f, key string, mods ...mod) *hb {
	return b.op(p, Info, f, key, mods...)
}

// deliver records an invoke and an immediate completion of type typ; mods
// apply to both.
func (b *hb) deliver(p int, mb, id string, typ OpType, mods ...mod) *hb {
	mods = append([]mod{msg(id)}, mods...)
	b.inv(p, FDeliver, mb, mods...)
	return b.op(p, typ, FDeliver, mb, mods...)
}

// read records a complete read of mb returning entries.
func (b *hb) read(p int, mb string, mods ...mod) *hb {
	b.inv(p, FRead, mb, mods...)
	return b.ok(p, FRead, mb, mods...)
}

func msg(id string) mod               { return func(o *Op) { o.MsgID = id } }
func final() mod                      { return func(o *Op) { o.Final = true } }
func errCode(e string) mod            { return func(o *Op) { o.Error = e } }
func exists(v bool) mod               { return func(o *Op) { o.Exists = Bool(v) } }
func validity(v uint32) mod           { return func(o *Op) { o.UIDValidity = v } }
func uidNext(v uint32) mod            { return func(o *Op) { o.UIDNext = v } }
func assigned(uid uint32) mod         { return func(o *Op) { o.UID, o.UIDValidity = uid, 1 } }
func flags(fs ...string) mod          { return func(o *Op) { o.Flags = fs } }
func mode(m string) mod               { return func(o *Op) { o.Mode = m } }
func to(mbs ...string) mod            { return func(o *Op) { o.To = mbs } }
func onNode(n string) mod             { return func(o *Op) { o.Node = n } }
func messages(ms ...Message) mod      { return func(o *Op) { o.Messages = ms } }
func ids(idList ...string) mod        { return func(o *Op) { o.Messages = plain(idList...) } }
func m(uid uint32, id string) Message { return Message{UID: uid, MsgID: id} }

func plain(idList ...string) []Message {
	out := make([]Message, len(idList))
	for i, id := range idList {
		out[i] = Message{MsgID: id}
	}
	return out
}

func wantValid(t *testing.T, r Result) {
	t.Helper()
	if !r.Valid {
		t.Fatalf("%s: want valid, got invalid\ncounts %v\nerrors:\n  %s", r.Name, r.Counts, strings.Join(r.Errors, "\n  "))
	}
}

// wantInvalid asserts an invalid result with count[name] == n for each pair.
func wantInvalid(t *testing.T, r Result, counts map[string]int) {
	t.Helper()
	if r.Valid {
		t.Fatalf("%s: want invalid, got valid; counts %v", r.Name, r.Counts)
	}
	if len(r.Errors) == 0 {
		t.Errorf("%s: invalid result without example errors", r.Name)
	}
	wantCounts(t, r, counts)
}

func wantCounts(t *testing.T, r Result, counts map[string]int) {
	t.Helper()
	for k, n := range counts {
		if r.Counts[k] != n {
			t.Errorf("%s: count %s = %d, want %d (counts %v, errors %q)", r.Name, k, r.Counts[k], n, r.Counts, r.Errors)
		}
	}
}
