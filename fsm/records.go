package fsm

// Records stored in the state. Most are JSON-encoded: they are small,
// rarely written, and JSON keeps the on-disk format inspectable and
// forward-compatible (unknown fields are ignored by older readers). The
// records every delivery touches (Mailbox, Folder, Message, Body) have
// binary codecs instead (mailbox_codec.go, message_codec.go,
// record_codec.go).

// Domain is a hosted mail domain.
type Domain struct {
	Name         string `json:"name"`
	CreatedIndex uint64 `json:"created_index"`
}

// Mailbox is a mail account. It has no system account behind it.
type Mailbox struct {
	Address string `json:"address"`
	// PasswordHash is stored under its own key, not in the record: RCPT
	// lookups read the record millions of times, logins read the hash.
	PasswordHash string `json:"-"`
	QuotaBytes   int64  `json:"quota_bytes,omitempty"` // 0 means unlimited
	UsedBytes    int64  `json:"used_bytes,omitempty"`
	Messages     int64  `json:"messages,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// HasForward mirrors "a forward exists for this address", so the
	// common RCPT lookup of a plain mailbox is a single read.
	HasForward   bool   `json:"has_forward,omitempty"`
	CreatedIndex uint64 `json:"created_index"`
	NextFolderID uint64 `json:"next_folder_id,omitempty"`
	// Removing marks a mailbox being removed in pieces
	// (MailboxUpdate.Removing, command encoding 10): Deliver and Copy
	// refuse it (ErrBeingRemoved) and Resolve lists it in
	// Resolution.Removing, so that no mail is accepted only to be
	// removed with it. From command encoding 12 apply keeps it equal
	// to "some removal holds the mark" (removalholds.go).
	Removing bool `json:"removing,omitempty"`
}

// Folder is one IMAP mailbox (folder) of a Mailbox.
type Folder struct {
	Name        string `json:"name"`
	ID          uint64 `json:"id"`
	UIDValidity uint32 `json:"uid_validity"`
	UIDNext     uint32 `json:"uid_next"`
	SpecialUse  string `json:"special_use,omitempty"` // RFC 6154 attribute
	Subscribed  bool   `json:"subscribed"`
	// ModSeq is the raft index of the last change to the folder or any of
	// its messages: a session that saw this ModSeq has nothing to poll.
	ModSeq uint64 `json:"modseq,omitempty"`
	// Counters kept by every message command, so STATUS is one read.
	Messages int64 `json:"messages,omitempty"`
	Bytes    int64 `json:"bytes,omitempty"`
	Unseen   int64 `json:"unseen,omitempty"`
	Deleted  int64 `json:"deleted,omitempty"`
	// LowUID is a lower bound on the folder's live UIDs: no message has
	// a smaller UID (0 means 1). Every removal advances it to the first
	// live UID, or to UIDNext when the folder is empty, so a scan starts
	// there instead of walking the tombstones of expunged messages.
	LowUID uint32 `json:"low_uid,omitempty"`
}

// Forward sends mail for Address to Targets. A catch-all has Address
// "@domain". With KeepCopy the mailbox at Address also gets a copy.
type Forward struct {
	Address      string   `json:"address"`
	Targets      []string `json:"targets"`
	KeepCopy     bool     `json:"keep_copy,omitempty"`
	CreatedIndex uint64   `json:"created_index"`
}

// Member is a cluster node's published addresses.
type Member struct {
	ID          string `json:"id"`
	ClusterAddr string `json:"cluster_addr"`
	AdminAddr   string `json:"admin_addr"`
}

// Settings are cluster-wide tunables changed through raft.
type Settings struct {
	Replicas    int `json:"replicas"`     // R: copies of each body
	WriteQuorum int `json:"write_quorum"` // W: durable copies before acknowledging
	// CommandEncoding is the newest command encoding proposers may write
	// (EncodingJSON, EncodingBinary or EncodingJSON3; 0 means JSON).
	// Raise it only once
	// every node runs a release that reads it: an older one stops on the
	// first entry it cannot decode. New clusters start at NewestEncoding.
	CommandEncoding int `json:"command_encoding,omitempty"`
	// MaxVoters caps the raft voters (0: no cap, as in a cluster created
	// before the setting; new clusters start at DefaultMaxVoters). Further
	// nodes join as non-voters and are promoted when a voter leaves or
	// stays down (node/voters.go). It needs CommandEncoding 3.
	MaxVoters int `json:"max_voters,omitempty"`
}

// DefaultMaxVoters: five voters ride out two failures; more would only
// slow every commit, which waits for a majority of them.
const DefaultMaxVoters = 5

// MaxMaxVoters bounds MaxVoters.
const MaxMaxVoters = 9

// DefaultSettings are used until a SettingsSet command is applied.
var defaultSettings = Settings{Replicas: 2, WriteQuorum: 2}

// DefaultSettings returns the settings of a cluster that never set any.
func DefaultSettings() Settings { return defaultSettings }

// defaultFolders are created with every mailbox (RFC 6154 special use).
var defaultFolders = []struct{ name, use string }{
	{"INBOX", ""},
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
}
