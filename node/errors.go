package node

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicemq/sluice/segstore"
)

// errCode maps an error from the registry or segstore to the Kafka error
// code a client acts on. Unknown errors are UNKNOWN_SERVER_ERROR: they are
// bugs to fix, so they are also logged by the caller.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, errUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, errInvalidParts):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, errInvalidReplica):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, errInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, segstore.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segstore.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, segstore.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segstore.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, segstore.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, segstore.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, segstore.ErrTransactionalNotSupported):
		// Not authorized for transactions is what it is; the message says why.
		return kerr.TransactionalIDAuthorizationFailed.Code
	case errors.Is(err, segstore.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, segstore.ErrClosed):
		// Shutting down or the topic went away under the request: the client
		// refreshes metadata and retries.
		return kerr.NotLeaderForPartition.Code
	}
	// repl and ctrl answer with Kafka's errors themselves.
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errMsg is the message for a response's ErrorMessage field.
func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
