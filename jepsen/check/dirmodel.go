package check

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// dirInput is a directory operation on one key.
type dirInput struct {
	Key string
	F   string
}

func (in dirInput) partitionKey() string { return in.Key }

// dirOutput is its outcome: Unknown (Info), OK, a meaningful error
// (ErrExists, ErrNotFound), or for reads the presence observed.
type dirOutput struct {
	Unknown bool
	OK      bool
	Err     string
	Exists  bool
}

// directoryModel: per key, the state is whether the mailbox exists.
func directoryModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return false },
		Step:      dirStep,
		DescribeOperation: func(in, out any) string {
			return describeDir(in.(dirInput), out.(dirOutput))
		},
		DescribeState: func(s any) string {
			if s.(bool) {
				return "present"
			}
			return "absent"
		},
		DescribeOperationMetadata: describeMetadata,
	}
}

func dirStep(state, input, output any) (bool, any) {
	exists, in, out := state.(bool), input.(dirInput), output.(dirOutput)
	switch in.F {
	case FDirAdd:
		if out.Unknown {
			return true, true
		}
		if out.OK {
			return !exists, true
		}
		return exists, exists // failed with ErrExists
	case FDirRemove:
		if out.Unknown {
			return true, false
		}
		if out.OK {
			return exists, false
		}
		return !exists, exists // failed with ErrNotFound
	case FDirRead:
		return out.Exists == exists, exists
	}
	return false, exists
}

func describeDir(in dirInput, out dirOutput) string {
	switch {
	case out.Unknown:
		return fmt.Sprintf("%s(%s) -> ?", in.F, in.Key)
	case in.F == FDirRead:
		return fmt.Sprintf("%s(%s) -> exists=%t", in.F, in.Key, out.Exists)
	case out.OK:
		return fmt.Sprintf("%s(%s) -> ok", in.F, in.Key)
	}
	return fmt.Sprintf("%s(%s) -> %s", in.F, in.Key, out.Err)
}

// CheckDirectory checks that dir-add, dir-remove and dir-read operations are
// linearizable against the per-key existence model.
func CheckDirectory(h History, opts Options) Result {
	calls, err := Pair(h)
	if err != nil {
		return malformed(NameDirectory, err)
	}
	c := newCollector(NameDirectory, opts, CountNonLinearizable, CountUnknown, "info", "dropped")
	l := newLineariser(calls)
	var ops []porcupine.Operation
	for _, call := range calls {
		switch call.Invoke.F {
		case FDirAdd, FDirRemove, FDirRead:
			if op, ok := dirOperation(c, l, call); ok {
				ops = append(ops, op)
			}
		}
	}
	runLinear(c, directoryModel(), ops, opts)
	return c.result()
}

// dirOperation converts one call; false means it constrains nothing.
func dirOperation(c *collector, l *lineariser, call Call) (porcupine.Operation, bool) {
	in := dirInput{Key: call.Invoke.Key, F: call.Invoke.F}
	done := call.Complete
	switch {
	case done.Type == OK && in.F == FDirRead:
		if done.Exists == nil {
			c.violation(CountMalformed, "op %d: dir-read completed without exists", done.Index)
			return porcupine.Operation{}, false
		}
		return l.op(call, in, dirOutput{Exists: *done.Exists}, false), true
	case done.Type == OK:
		return l.op(call, in, dirOutput{OK: true}, false), true
	case done.Type == Fail && meaningfulDirError(in.F, done.Error):
		return l.op(call, in, dirOutput{Err: done.Error}, false), true
	case done.Type == Info && in.F != FDirRead:
		c.add("info", 1)
		return l.op(call, in, dirOutput{Unknown: true}, true), true
	}
	c.add("dropped", 1)
	return porcupine.Operation{}, false
}

func meaningfulDirError(f, e string) bool {
	return (f == FDirAdd && e == ErrExists) || (f == FDirRemove && e == ErrNotFound)
}
