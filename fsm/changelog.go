package fsm

import (
	"cmp"
	"slices"
	"sync"
)

// changeLog remembers which messages recent entries wrote, per folder, so
// that a reader holding a folder's view at one ModSeq can bring it to a
// later one by reading only those messages (State.ViewSince) instead of
// the whole folder.
//
// Invariants:
//   - Every write of a message record goes through txn.putMessage or
//     txn.delMessage, which record the folder, the UID and the entry's
//     index here before the batch commits. So every change a reader's
//     snapshot holds is in the log, unless the log was reset or trimmed
//     past it, which changed reports by answering ok=false.
//   - The log may name more than changed (a write the batch later
//     overwrote, a failed command's write): a reader re-reads those
//     messages, which costs a lookup and is never wrong.
//   - It is in memory only: at Open and Restore it starts empty, complete
//     from the applied index on.
type changeLog struct {
	mu      sync.Mutex
	since   uint64 // every change at an index above this is logged
	folders map[string]*folderLog
	n       int // (index, uid) pairs held, over all folders
}

// folderLog is one folder's changes, in index order.
type folderLog struct {
	from    uint64 // this folder's changes above this index are all here
	changes []folderChange
}

type folderChange struct {
	index uint64
	uid   uint32
}

// Bounds of the change log. A folder keeps its most recent changes only;
// a reader further behind reads the whole folder, as it did without the log.
const (
	changeLogPerFolder = 4096
	changeLogTotal     = 1 << 20
)

// reset empties the log, which is then complete above index.
func (l *changeLog) reset(index uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since, l.folders, l.n = index, nil, 0
}

// record notes that the entry at index wrote the message uid of the folder
// whose message keys start with prefix.
func (l *changeLog) record(prefix []byte, index uint64, uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= changeLogTotal {
		// Start again, complete above this index only: the entry's
		// earlier writes are no longer in the log.
		l.since, l.folders, l.n = index, nil, 0
		return
	}
	if l.folders == nil {
		l.folders = map[string]*folderLog{}
	}
	f := l.folders[string(prefix)]
	if f == nil {
		f = &folderLog{}
		l.folders[string(prefix)] = f
	}
	f.changes = append(f.changes, folderChange{index, uid})
	l.n++
	if len(f.changes) > changeLogPerFolder {
		l.n -= f.trim()
	}
}

// trim drops the older half of f's changes, and any others of the same
// index as the last one dropped, so that from stays exact. It returns
// how many it dropped.
func (f *folderLog) trim() int {
	cut := len(f.changes) / 2
	f.from = f.changes[cut-1].index
	for cut < len(f.changes) && f.changes[cut].index == f.from {
		cut++
	}
	f.changes = slices.Clone(f.changes[cut:])
	return cut
}

// changed returns, in ascending order without repeats, the UIDs written
// in the folder of prefix by entries above from and up to to. ok is false
// when the log does not hold every change in that range.
func (l *changeLog) changed(prefix []byte, from, to uint64) (uids []uint32, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.since {
		return nil, false
	}
	f := l.folders[string(prefix)]
	if f == nil {
		return nil, true // no message of the folder changed since l.since
	}
	if from < f.from {
		return nil, false
	}
	start, _ := slices.BinarySearchFunc(f.changes, from+1, func(c folderChange, i uint64) int {
		return cmp.Compare(c.index, i)
	})
	for _, c := range f.changes[start:] {
		if c.index > to {
			break
		}
		uids = append(uids, c.uid)
	}
	slices.Sort(uids)
	return slices.Compact(uids), true
}
