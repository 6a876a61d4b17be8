package segstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kv is a record to write: a nil key is a keyless record, tomb a null value.
type kv struct {
	key  *string
	val  string
	tomb bool
}

func key(k string) *string { return &k }

func rec(k, v string) kv    { return kv{key: key(k), val: v} }
func tombstone(k string) kv { return kv{key: key(k), tomb: true} }

// keyedBatch encodes recs as a producer would (baseOffset 0, timestamps ts,
// ts+1, ...). pid < 0 is a non-idempotent producer.
func keyedBatch(recs []kv, ts int64, codec *kgo.CompressionCodec, pid int64, seq int32) []byte {
	var data []byte
	for i, r := range recs {
		var b []byte
		b = append(b, 0)
		b = kbin.AppendVarlong(b, int64(i))
		b = kbin.AppendVarint(b, int32(i))
		if r.key == nil {
			b = kbin.AppendVarint(b, -1)
		} else {
			b = kbin.AppendVarintBytes(b, []byte(*r.key))
		}
		if r.tomb {
			b = kbin.AppendVarint(b, -1)
		} else {
			b = kbin.AppendVarintBytes(b, []byte(r.val))
		}
		b = kbin.AppendVarint(b, 0)
		data = kbin.AppendVarint(data, int32(len(b)))
		data = append(data, b...)
	}
	var attrs uint16
	if codec != nil {
		c, err := kgo.DefaultCompressor(*codec)
		if err != nil {
			panic(err)
		}
		out, typ := c.Compress(new(bytes.Buffer), data)
		data, attrs = append([]byte(nil), out...), uint16(typ)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+len(data))
	be := binary.BigEndian
	be.PutUint32(b[offBatchLength:], uint32(batchHeaderSize-logOverhead+len(data)))
	be.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelt:], uint32(len(recs)-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(ts))
	be.PutUint64(b[offMaxTimestamp:], uint64(ts+int64(len(recs)-1)))
	be.PutUint64(b[offProducerID:], uint64(pid))
	epoch, bseq := uint16(0xffff), uint32(0xffffffff)
	if pid >= 0 {
		epoch, bseq = 0, uint32(seq)
	}
	be.PutUint16(b[offProducerEpoch:], epoch)
	be.PutUint32(b[offBaseSequence:], bseq)
	be.PutUint32(b[offRecordCount:], uint32(len(recs)))
	b = append(b, data...)
	be.PutUint32(b[offCRC:], crcOf(b))
	return b
}

// logRec is a record read back.
type logRec struct {
	off    int64
	key    string
	hasKey bool
	val    string
	tomb   bool
}

func (r logRec) String() string {
	if r.tomb {
		return fmt.Sprintf("%d:%s=<tomb>", r.off, r.key)
	}
	return fmt.Sprintf("%d:%s=%s", r.off, r.key, r.val)
}

// decodeBatches checks every batch as stored and returns its records and
// the batches' headers; offsets must rise strictly across batches.
func decodeBatches(batches [][]byte) ([]logRec, []batchHeader, error) {
	var out []logRec
	var hs []batchHeader
	next := int64(-1)
	for _, b := range batches {
		h, err := validateStored(b)
		if err != nil {
			return nil, nil, err
		}
		if h.BaseOffset < next {
			return nil, nil, fmt.Errorf("batch at %d overlaps the previous one ending at %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
		hs = append(hs, h)
		data, err := recordsOf(b, &h)
		if err != nil {
			return nil, nil, err
		}
		err = walkBatchRecords(data, &h, func(r *record) error {
			out = append(out, logRec{off: h.BaseOffset + int64(r.offDelta), key: string(r.key), hasKey: r.hasKey,
				tomb: !r.hasValue, val: valueOf(r)})
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return out, hs, nil
}

// valueOf digs the value out of a record (the walker only reports whether
// there is one).
func valueOf(r *record) string {
	if !r.hasValue {
		return ""
	}
	body := r.raw
	_, k := kbin.Varint(body)
	body = body[k+1:]
	_, k = kbin.Varlong(body)
	body = body[k:]
	_, k = kbin.Varint(body)
	body = body[k:]
	kl, k := kbin.Varint(body)
	body = body[k:]
	if kl > 0 {
		body = body[kl:]
	}
	vl, k := kbin.Varint(body)
	return string(body[k : k+int(vl)])
}

func readRecs(t *testing.T, l *Log) []logRec {
	t.Helper()
	recs, _, err := decodeBatches(readAll(t, l))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// latestByKey is what a consumer reading everything ends up with: per key
// the last value, tombstones deleting.
func latestByKey(recs []logRec) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		if !r.hasKey {
			continue
		}
		if r.tomb {
			delete(m, r.key)
		} else {
			m[r.key] = r.val
		}
	}
	return m
}

// cleanAll runs passes until none is due.
func cleanAll(t *testing.T, st *Store) (passes int) {
	t.Helper()
	for {
		_, ok, err := st.Clean()
		if err != nil {
			t.Fatalf("clean: %v", err)
		}
		if !ok {
			return passes
		}
		if passes++; passes > 1000 {
			t.Fatal("cleaning never settles")
		}
	}
}

// compactEnv is an env whose cleaner runs only when the test calls Clean.
func compactEnv(t *testing.T, mut func(*Config)) *env {
	return newEnv(t, func(c *Config) {
		c.Cleaner.Disable = true
		if mut != nil {
			mut(c)
		}
	})
}

func compactCfg(segBytes int64) LogConfig {
	return LogConfig{SegmentBytes: segBytes, IndexIntervalBytes: 512, Cleanup: CleanupCompact}
}

// roll makes every record so far cleanable: a record too big for the
// active segment starts a new one.
func rollWith(t *testing.T, l *Log, ts int64) {
	t.Helper()
	big := make([]byte, l.Config().SegmentBytes)
	b := keyedBatch([]kv{rec("__roll", string(big))}, ts, nil, -1, 0)
	if r := appendSync(t, l, b, 0); r.Err != nil {
		t.Fatalf("roll: %v", r.Err)
	}
}
