package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
)

// ErrAmbiguousID: a shortened queue ID begins more than one entry's ID.
var ErrAmbiguousID = errors.New("ambiguous queue ID")

// ErrNoQueueEntry: no queue entry has the ID given, or one that begins so.
var ErrNoQueueEntry = errors.New("not found")

// queueIDLen is the length of a queue entry's ID, its raft index in 16
// hex digits with leading zeros (fsm's queueID).
const queueIDLen = 16

// maxMatchesShown is how many entries an ambiguous ID's error names.
const maxMatchesShown = 5

// resolveQueueID turns what the operator typed into the ID of one queue
// entry. A whole ID is taken as it is; anything shorter is looked up in
// the queue's listing, as a prefix of an ID with or without its leading
// zeros ("1c" and "000000000000001c" name the same entry, and "1" names
// it too if no other entry's ID begins so), in either case of letters.
func resolveQueueID(cmd *cobra.Command, cl *clientFlags, arg string) (string, error) {
	want := strings.ToLower(strings.TrimSpace(arg))
	switch {
	case want == "" || strings.Trim(want, "0123456789abcdef") != "":
		return "", fmt.Errorf("%w: no queue entry %q (an ID is hex digits, as queue ls shows it)", ErrNoQueueEntry, arg)
	case len(want) >= queueIDLen:
		return want, nil // whole: the node says whether it is there
	}
	list, err := pages(cmd, cl, "/v1/queue?", func(e fsm.QueueEntry) string { return e.ID })
	if err != nil {
		return "", err
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.ID
	}
	return matchQueueID(ids, arg, want)
}

// matchQueueID picks from ids the one that want (arg as typed, in lower
// case) names: the one equal to it but for leading zeros, else the only
// one it begins.
func matchQueueID(ids []string, arg, want string) (string, error) {
	bare := strings.TrimLeft(want, "0")
	var matches []string
	for _, id := range ids {
		idBare := strings.TrimLeft(id, "0")
		if bare != "" && idBare == bare {
			return id, nil
		}
		if strings.HasPrefix(id, want) || (bare != "" && strings.HasPrefix(idBare, bare)) {
			matches = append(matches, id)
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) == 0:
		return "", fmt.Errorf("%w: no queue entry %q", ErrNoQueueEntry, arg)
	}
	shown := strings.Join(matches[:min(len(matches), maxMatchesShown)], ", ")
	if len(matches) > maxMatchesShown {
		shown += fmt.Sprintf(" and %d more", len(matches)-maxMatchesShown)
	}
	return "", fmt.Errorf("%w %q: it begins %d entries' IDs (%s): give more of it", ErrAmbiguousID, arg, len(matches), shown)
}
