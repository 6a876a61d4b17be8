// InitProducerId (key 22), versions 0-5.
//
// Idempotent producers (no transactional id) get a new producer id with
// epoch 0; ids come from <data-dir>/producer-id-block (producerids.go) and
// are never handed out twice, not even across a crash. Produce then checks
// each partition's sequences (segstore/producers.go). A v3+ request naming
// the id and epoch the producer has (KIP-360, after an unknown sequence
// state) gets the same id with epoch+1, or a new id with epoch 0 once the
// epoch would pass 32766 or when this broker never handed the id out.
//
// Deviations: transactional ids are refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (logged once) — there is no
// transaction coordinator yet, and this code, unlike a generic one, makes
// clients fail at once with a clear cause. Kafka answers a
// non-transactional request that names its id and epoch with a new id
// (idempotent producers bump their epoch themselves); sluice bumps the epoch
// of the same id, which clients accept equally. With one broker there is no
// controller to hand out id blocks, so the broker persists its own.
package node

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerAPI(&apiDef{key: 22, min: 0, max: 5, handle: handleInitProducerID})
}

// maxProducerEpoch is the highest epoch handed out (Kafka's Short.MAX_VALUE
// - 1: the last value is kept free so a bump can always be detected).
const maxProducerEpoch = math.MaxInt16 - 1

func handleInitProducerID(n *Node, c *call) {
	req := c.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	if req.TransactionalID != nil {
		if n.pids.txnRefused.CompareAndSwap(false, true) {
			n.log.Info("refusing transactional producers: transactions are not supported yet",
				"transactional_id", *req.TransactionalID, "remote", c.req.RemoteAddr())
		}
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		c.respond(resp)
		return
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < maxProducerEpoch &&
		n.pids.issued(req.ProducerID) {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		c.respond(resp)
		return
	}
	if id, ok := n.pids.take(); ok {
		resp.ProducerID = id
		c.respond(resp)
		return
	}
	// The block is used up: reserving the next one writes and fsyncs a file.
	c.async(func() {
		id, err := n.pids.takeOrReserve()
		if err != nil {
			n.log.Error("InitProducerId", "err", err)
			resp.ErrorCode = kerr.KafkaStorageError.Code
		} else {
			resp.ProducerID = id
		}
		c.respond(resp)
	})
}
