package fsm

import (
	"github.com/cockroachdb/pebble/v2"
)

// QueueGet returns one queue entry.
func (s *State) QueueGet(id string) (QueueEntry, error) {
	var e QueueEntry
	err := s.view(func(r pebble.Reader) error {
		ok, err := getJSON(r, queueKey(id), &e)
		if err == nil && !ok {
			err = errorf(ErrNotFound, "no queue entry %s", id)
		}
		return err
	})
	return e, err
}

// QueueList returns up to limit entries in ID (creation) order, starting
// after the ID `after` ("" for the start).
func (s *State) QueueList(after string, limit int) ([]QueueEntry, error) {
	lower := []byte("q\x00")
	if after != "" {
		lower = append(queueKey(after), 0)
	}
	out := []QueueEntry{}
	err := s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd([]byte("q\x00"))})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
			var e QueueEntry
			if err := decodeRecord(it.Value(), &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return it.Error()
	})
	return out, err
}

// QueueDue lists the IDs of up to limit entries that may be worked at now
// (unix ms): due and not leased by anyone.
func (s *State) QueueDue(now int64, limit int) ([]string, error) {
	var ids []string
	err := s.view(func(r pebble.Reader) (err error) { ids, err = dueIDs(r, now, limit); return err })
	return ids, err
}

// QueueStats summarises the queue for metrics.
type QueueStats struct {
	Entries    int   `json:"entries"`
	Recipients int   `json:"recipients"` // still pending
	Oldest     int64 `json:"oldest"`     // Created of the oldest entry (unix ms), 0 if empty
}

// QueueStats scans the queue. It reads every entry: meant for a scrape
// every few seconds on queues of up to some 10^5 entries.
func (s *State) QueueStats() (QueueStats, error) {
	var st QueueStats
	err := s.view(func(r pebble.Reader) error {
		p := []byte("q\x00")
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			var e QueueEntry
			if err := decodeRecord(it.Value(), &e); err != nil {
				return err
			}
			st.Entries++
			st.Recipients += len(e.Pending())
			if st.Oldest == 0 || e.Created < st.Oldest {
				st.Oldest = e.Created
			}
		}
		return it.Error()
	})
	return st, err
}
