// The group APIs, served by package group's coordinator (see its doc.go for
// Kafka's rules it follows). Versions:
//
//	OffsetCommit   (8)  v0-9   (v10 names topics by id: not served yet)
//	OffsetFetch    (9)  v0-9   (v8+ several groups per request)
//	JoinGroup      (11) v0-9
//	Heartbeat      (12) v0-4
//	LeaveGroup     (13) v0-5
//	SyncGroup      (14) v0-5
//	DescribeGroups (15) v0-5
//	ListGroups     (16) v0-5
//	DeleteGroups   (42) v0-2
//	OffsetDelete   (47) v0
//
// The coordinator answers from any goroutine, possibly much later (a
// JoinGroup waits for the rebalance); it never blocks the event loop: its
// writes to __consumer_offsets complete on the storage committer.
package node

import (
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/group"
)

func init() {
	for _, d := range []struct{ key, max int16 }{
		{8, 9}, {9, 9}, {11, 9}, {12, 4}, {13, 5}, {14, 5}, {15, 5}, {16, 5}, {42, 2}, {47, 0},
	} {
		registerAPI(&apiDef{key: d.key, min: 0, max: d.max, handle: handleGroupAPI})
	}
}

func handleGroupAPI(n *Node, c *call) {
	var cl group.Client
	if c.req.ClientID != nil {
		cl.ID = *c.req.ClientID
	}
	// DescribeGroups shows the host as Kafka does: "/" + IP.
	if a, ok := c.req.RemoteAddr().(*net.TCPAddr); ok {
		cl.Host = "/" + a.IP.String()
	}
	n.groups.coord.HandleFrom(cl, c.kreq, func(resp kmsg.Response) { c.respond(resp) })
}
