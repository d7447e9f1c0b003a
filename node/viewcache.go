package node

import (
	"container/list"
	"sync"
	"sync/atomic"

	"powermail/fsm"
)

// The view cache. Every IMAP session polls its selected folder, and each
// change to a folder makes every session on it re-read the whole message
// list. Sessions of one mailbox on one node share the read: a folder's
// messages are fully determined by its ID and ModSeq (the raft index of
// its last change, which every message command bumps), so a view read at
// that ModSeq is reused until the folder changes. When it changes, the old
// view is brought up to date (fsm.State.ViewSince): only the messages the
// folder's recent entries wrote are read again, or, when the state's
// change log no longer reaches back that far, the folder is read again
// and decoded against the old view, so the messages that did not change
// cost a comparison, not an allocation.
// Bounded by the number of messages held.

// viewCacheMessages bounds the messages held by the view cache.
const viewCacheMessages = 1 << 20

type viewCache struct {
	mu   sync.Mutex
	lru  *list.List // of *viewEntry, most recent first
	m    map[string]*list.Element
	msgs int
	// flights are the reads of a folder under way, by key (viewFlight).
	flights map[string]*viewFlight
	// reads counts the folder reads (fsm.State.ViewSince) made.
	reads atomic.Int64
}

// viewFlight is one read of a folder that the sessions polling it after
// the same change share. A change wakes every session on the folder at
// once: each missed the cache, and each brought the old view up to date
// by itself, a copy of the whole message list per session (5 MB for a
// folder of 65,536 messages), and as many reads of the state. The first
// reads; the others wait for its view and take it if it is of the folder
// they read, and at least as new as its record (sharedView).
type viewFlight struct {
	done   chan struct{}
	folder fsm.Folder
	msgs   []fsm.Message
	err    error
}

// join returns the read of key under way, or starts one, which the
// caller makes and ends with land (lead true).
func (c *viewCache) join(key string) (fl *viewFlight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fl, ok := c.flights[key]; ok {
		return fl, false
	}
	if c.flights == nil {
		c.flights = map[string]*viewFlight{}
	}
	fl = &viewFlight{done: make(chan struct{})}
	c.flights[key] = fl
	return fl, true
}

// land ends the read fl of key, which joined readers then take.
func (c *viewCache) land(key string, fl *viewFlight) {
	c.mu.Lock()
	delete(c.flights, key)
	c.mu.Unlock()
	close(fl.done)
}

type viewEntry struct {
	key    string
	folder fsm.Folder // the record msgs were read with
	msgs   []fsm.Message
}

// get returns the cached messages of key if they were read at f's ID and
// ModSeq.
func (c *viewCache) get(key string, f fsm.Folder) ([]fsm.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	v := e.Value.(*viewEntry)
	if v.folder.ID != f.ID || v.folder.ModSeq != f.ModSeq {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return v.msgs, true
}

// previous returns the messages last cached for key, whatever their
// ModSeq, and the folder record they were read with, for bringing them up
// to date (fsm.State.ViewSince); a zero Folder if there are none.
func (c *viewCache) previous(key string) (fsm.Folder, []fsm.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		v := e.Value.(*viewEntry)
		return v.folder, v.msgs
	}
	return fsm.Folder{}, nil
}

func (c *viewCache) put(key string, f fsm.Folder, msgs []fsm.Message) {
	if len(msgs) > viewCacheMessages/4 {
		return // a huge folder would push out everyone else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.lru = map[string]*list.Element{}, list.New()
	}
	if e, ok := c.m[key]; ok {
		c.msgs -= len(e.Value.(*viewEntry).msgs)
		c.lru.Remove(e)
	}
	c.m[key] = c.lru.PushFront(&viewEntry{key: key, folder: f, msgs: msgs})
	c.msgs += len(msgs)
	for c.msgs > viewCacheMessages && c.lru.Len() > 1 {
		old := c.lru.Back()
		v := old.Value.(*viewEntry)
		c.lru.Remove(old)
		delete(c.m, v.key)
		c.msgs -= len(v.msgs)
	}
}
