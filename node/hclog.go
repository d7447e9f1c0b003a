package node

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// raftLogger is the hclog.Logger that hashicorp/raft (and its transport
// and snapshot store) log through. It writes through the node's slog
// logger, so a node's log has the one format its operator chose
// (--log-format), text or JSON, with the same keys (time, level, msg,
// node) on raft's lines as on the node's own, instead of hclog's JSON
// among slog's text. Raft's lines carry module=raft (or raft.NAME for a
// named part). Only warnings and errors pass unless SetLevel lowers the
// level: raft logs at info for every election and snapshot. Its errors
// about a snapshot refused at the free-space reserve, which it repeats
// at every try, go out once a minute (raftlogrepeats.go).
type raftLogger struct {
	log     *slog.Logger
	name    string
	implied []any
	// level is an hclog.Level, shared by the loggers derived from this
	// one (as hclog's own are, without IndependentLevels).
	level *atomic.Int32
	// repeats paces raft's lines about refused snapshots, shared by the
	// loggers derived from this one (raftlogrepeats.go).
	repeats *refusalRepeats
}

var _ hclog.Logger = (*raftLogger)(nil)

func newRaftLogger(log *slog.Logger) *raftLogger {
	l := &raftLogger{log: log, name: "raft", level: new(atomic.Int32), repeats: newRefusalRepeats()}
	l.level.Store(int32(hclog.Warn))
	return l
}

// slogLevel maps hclog's levels onto slog's; trace sits below debug.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (l *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < l.GetLevel() {
		return
	}
	if level >= hclog.Warn {
		if key, ok := refusalKey(l.name, msg, slices.Concat(l.implied, args)); ok {
			out, left := l.repeats.admit(key)
			if !out {
				level = hclog.Debug
				if level < l.GetLevel() {
					return
				}
			} else if left > 0 {
				args = append(slices.Clip(args), "suppressed", left)
			}
		}
	}
	attrs := make([]any, 0, 2+len(l.implied)+len(args))
	attrs = append(attrs, "module", l.name)
	for _, a := range slices.Concat(l.implied, args) {
		attrs = append(attrs, plainValue(a))
	}
	l.log.Log(context.Background(), slogLevel(level), msg, attrs...)
}

// plainValue renders an hclog.Fmt value, which slog would print as the
// list of its parts.
func plainValue(a any) any {
	if f, ok := a.(hclog.Format); ok && len(f) > 0 {
		if format, ok := f[0].(string); ok {
			return fmt.Sprintf(format, f[1:]...)
		}
	}
	return a
}

func (l *raftLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *raftLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *raftLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *raftLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *raftLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *raftLogger) enabled(level hclog.Level) bool {
	return level >= l.GetLevel() && l.log.Enabled(context.Background(), slogLevel(level))
}

func (l *raftLogger) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *raftLogger) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *raftLogger) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *raftLogger) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *raftLogger) IsError() bool { return l.enabled(hclog.Error) }

func (l *raftLogger) ImpliedArgs() []any { return l.implied }

func (l *raftLogger) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(append([]any(nil), l.implied...), args...)
	return &c
}

func (l *raftLogger) Name() string { return l.name }

func (l *raftLogger) Named(name string) hclog.Logger {
	return l.ResetNamed(l.name + "." + name)
}

func (l *raftLogger) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

func (l *raftLogger) SetLevel(level hclog.Level) { l.level.Store(int32(level)) }
func (l *raftLogger) GetLevel() hclog.Level      { return hclog.Level(l.level.Load()) }

// StandardLogger gives a log.Logger whose lines come out at
// opts.ForceLevel (info without it), through the same slog logger.
func (l *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return slog.NewLogLogger(l.log.With("module", l.name).Handler(), slogLevel(level))
}

func (l *raftLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return l.StandardLogger(opts).Writer()
}
