package group

import "github.com/twmb/franz-go/pkg/kmsg"

// Handle serves one of JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, OffsetDelete, DescribeGroups, ListGroups and
// DeleteGroups, with no client information (member ids get an empty client
// id prefix; DescribeGroups shows empty client ids and hosts). The node
// should call HandleFrom. Safe for concurrent use, like HandleFrom.
func (c *Coordinator) Handle(req kmsg.Request, respond func(kmsg.Response)) {
	c.HandleFrom(Client{}, req, respond)
}

// HandleFrom serves req (kmsg request types, version already set by the
// decoder). respond is called exactly once, from any goroutine, possibly
// much later: JoinGroup waits for the rebalance, SyncGroup for the leader's
// assignment, commits and deletions until their records are durable. The
// response carries the request's version. HandleFrom never blocks on I/O
// and never calls respond or Log.Append while holding a lock.
//
// The coordinator keeps strings from req (group, member and topic names,
// metadata): decode it with ReadFrom, not UnsafeReadFrom over a buffer that
// is reused. Byte fields (protocol metadata, assignments) are copied.
//
// Safe for concurrent use from any goroutine.
func (c *Coordinator) HandleFrom(cl Client, req kmsg.Request, respond func(kmsg.Response)) {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		c.handleJoin(cl, r, respond)
	case *kmsg.SyncGroupRequest:
		c.handleSync(r, respond)
	case *kmsg.HeartbeatRequest:
		c.handleHeartbeat(r, respond)
	case *kmsg.LeaveGroupRequest:
		c.handleLeave(r, respond)
	case *kmsg.OffsetCommitRequest:
		c.handleCommit(r, respond)
	case *kmsg.OffsetFetchRequest:
		c.handleFetch(r, respond)
	case *kmsg.OffsetDeleteRequest:
		c.handleOffsetDelete(r, respond)
	case *kmsg.DescribeGroupsRequest:
		c.handleDescribe(r, respond)
	case *kmsg.ListGroupsRequest:
		c.handleList(r, respond)
	case *kmsg.DeleteGroupsRequest:
		c.handleDeleteGroups(r, respond)
	default:
		// BUG: the node routed an API this package does not serve. Answer
		// the empty response of the right kind rather than never.
		c.lg.Error("BUG: group coordinator got an unsupported request", "key", req.Key())
		respond(req.ResponseKind())
	}
}
