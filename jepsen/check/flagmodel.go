package check

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// flagInput is a flag operation on one message. Init is the message's
// initial flag set, carried by every input because porcupine has one Init
// for all partitions.
type flagInput struct {
	Key   string // mailbox/message-ID
	F     string
	Mode  string
	Flags string // canonical
	Init  string // canonical
}

func (in flagInput) partitionKey() string { return in.Key }

// flagOutput is the outcome: Unknown (Info) or, for reads, the set seen.
type flagOutput struct {
	Unknown bool
	Flags   string // canonical
}

// flagState is the flag set; Set is false until the first step installs
// the initial flags.
type flagState struct {
	Set   bool
	Flags string
}

func flagModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return flagState{} },
		Step:      flagStep,
		DescribeOperation: func(in, out any) string {
			return describeFlags(in.(flagInput), out.(flagOutput))
		},
		DescribeState:             func(s any) string { return "{" + s.(flagState).Flags + "}" },
		DescribeOperationMetadata: describeMetadata,
	}
}

func flagStep(state, input, output any) (bool, any) {
	st, in, out := state.(flagState), input.(flagInput), output.(flagOutput)
	if !st.Set {
		st = flagState{Set: true, Flags: in.Init}
	}
	if in.F == FReadFlags {
		return out.Flags == st.Flags, st
	}
	return true, flagState{Set: true, Flags: applyFlags(st.Flags, in.Mode, in.Flags)}
}

func describeFlags(in flagInput, out flagOutput) string {
	if in.F == FReadFlags {
		return fmt.Sprintf("read(%s) -> {%s}", in.Key, out.Flags)
	}
	s := fmt.Sprintf("%s(%s, {%s})", in.Mode, in.Key, in.Flags)
	if out.Unknown {
		return s + " -> ?"
	}
	return s + " -> ok"
}

// CheckFlags checks that store-flags and read-flags operations are
// linearizable against the per-message flag-set model.
func CheckFlags(h History, opts Options) Result {
	calls, err := Pair(h)
	if err != nil {
		return malformed(NameFlags, err)
	}
	c := newCollector(NameFlags, opts, CountNonLinearizable, CountUnknown, "info", "dropped")
	ds := indexDeliveries(calls)
	l := newLineariser(calls)
	var ops []porcupine.Operation
	for _, call := range calls {
		if call.Invoke.F != FStoreFlags && call.Invoke.F != FReadFlags {
			continue
		}
		k := msgKey{call.Invoke.Key, call.Invoke.MsgID}
		var init string
		if d := ds[k]; d != nil {
			init = canonFlags(d.flags)
		}
		if op, ok := flagOperation(c, l, call, k, init); ok {
			ops = append(ops, op)
		}
	}
	runLinear(c, flagModel(), ops, opts)
	return c.result()
}

// flagOperation converts one call; false means it constrains nothing.
func flagOperation(c *collector, l *lineariser, call Call, k msgKey, init string) (porcupine.Operation, bool) {
	inv, done := call.Invoke, call.Complete
	in := flagInput{Key: k.String(), F: inv.F, Mode: inv.Mode, Flags: canonFlags(inv.Flags), Init: init}
	if inv.F == FStoreFlags && !validMode(inv.Mode) {
		c.violation(CountMalformed, "op %d: store-flags mode %q", inv.Index, inv.Mode)
		return porcupine.Operation{}, false
	}
	switch {
	case done.Type == OK && inv.F == FReadFlags:
		return l.op(call, in, flagOutput{Flags: canonFlags(done.Flags)}, false), true
	case done.Type == OK:
		return l.op(call, in, flagOutput{}, false), true
	case done.Type == Info && inv.F == FStoreFlags:
		c.add("info", 1)
		return l.op(call, in, flagOutput{Unknown: true}, true), true
	}
	c.add("dropped", 1)
	return porcupine.Operation{}, false
}
