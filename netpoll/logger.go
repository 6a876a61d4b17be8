package netpoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// gnetLogger routes gnet's printf-style logging into slog so one logger sees
// everything. Note gnet installs it as a process-wide default too.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) logf(level slog.Level, format string, args []any) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	g.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "gnet")
}

func (g gnetLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }

// Infof is demoted to debug: gnet's info lines are start-up chatter
// ("Launching gnet with N event-loops") that the node reports itself.
func (g gnetLogger) Infof(format string, args ...any)  { g.logf(slog.LevelDebug, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

// Fatalf keeps gnet's contract (the process exits) after logging.
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.logf(slog.LevelError, format, args)
	os.Exit(1)
}

// closeForError logs why a connection is being closed for bad input or an
// I/O failure. Loop only.
func (s *Server) closeForError(c *Conn, err error) {
	var fse *frameSizeError
	switch {
	case errors.As(err, &fse):
		s.stats.connsBadInput.Add(1)
		s.log.Warn("netpoll: closing connection: frame size out of range",
			"remote", c.remote, "size", fse.size, "max", fse.max)
	case errors.Is(err, errHeaderShort), errors.Is(err, errClientIDLength), errors.Is(err, errTaggedFields):
		s.stats.connsBadInput.Add(1)
		s.log.Warn("netpoll: closing connection: malformed request header",
			"remote", c.remote, "err", err)
	case errors.Is(err, errInboundOverflow):
		s.stats.connsBadInput.Add(1)
		s.log.Warn("netpoll: closing connection: client kept sending while paused",
			"remote", c.remote, "buffered", c.gc.InboundBuffered(), "max", s.cfg.MaxBufferedInbound)
	case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ECONNRESET):
		s.log.Debug("netpoll: connection reset while writing", "remote", c.remote, "err", err)
	default:
		s.log.Error("netpoll: closing connection", "remote", c.remote, "err", err)
	}
}
