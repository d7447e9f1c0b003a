package check

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about a history that does not
// follow the model (bad op type, completion without invocation, ...).
var ErrMalformed = errors.New("malformed history")

// Call is an invocation paired with its completion.
type Call struct {
	Invoke   Op
	Complete Op // Type is OK, Fail or Info
	// Pending is set when the history holds no completion; Complete is then
	// a synthesized Info at the last time of the history.
	Pending bool
}

// Start is the invoke time.
func (c Call) Start() int64 { return c.Invoke.Time }

// End is the completion time.
func (c Call) End() int64 { return c.Complete.Time }

// Type is the completion type.
func (c Call) Type() OpType { return c.Complete.Type }

// Pair matches every invocation with the next completion of the same
// process. Calls are returned in invocation order. A process must not invoke
// again while its previous op is outstanding, a completion must follow an
// invocation of the same F, and must not be earlier than it.
func Pair(h History) ([]Call, error) {
	pending := map[int]int{} // process -> index into calls
	var calls []Call
	var last int64
	for i, op := range h {
		last = max(last, op.Time)
		if op.Type == Invoke {
			if j, busy := pending[op.Process]; busy {
				return nil, fmt.Errorf("op %d: process %d invoked while op %d is outstanding: %w",
					i, op.Process, calls[j].Invoke.Index, ErrMalformed)
			}
			pending[op.Process] = len(calls)
			op.Index = i
			calls = append(calls, Call{Invoke: op})
			continue
		}
		if err := complete(calls, pending, i, op); err != nil {
			return nil, err
		}
	}
	for _, j := range pending {
		inv := calls[j].Invoke
		calls[j].Pending = true
		calls[j].Complete = Op{Index: -1, Time: max(last, inv.Time), Process: inv.Process,
			Type: Info, F: inv.F, Key: inv.Key, Node: inv.Node, Error: "no completion recorded"}
	}
	return calls, nil
}

func complete(calls []Call, pending map[int]int, i int, op Op) error {
	if !op.Type.Valid() {
		return fmt.Errorf("op %d: type %q: %w", i, op.Type, ErrMalformed)
	}
	j, ok := pending[op.Process]
	if !ok {
		return fmt.Errorf("op %d: %s completion of process %d without invocation: %w",
			i, op.Type, op.Process, ErrMalformed)
	}
	inv := calls[j].Invoke
	if op.F != inv.F {
		return fmt.Errorf("op %d: completion f %q does not match invocation %d f %q: %w",
			i, op.F, inv.Index, inv.F, ErrMalformed)
	}
	if op.Time < inv.Time {
		return fmt.Errorf("op %d: completes at %d before its invocation at %d: %w",
			i, op.Time, inv.Time, ErrMalformed)
	}
	op.Index = i
	calls[j].Complete = op
	delete(pending, op.Process)
	return nil
}
