package group

import (
	"math"
	"unicode/utf16"
)

// PartitionFor is Kafka's coordinator partition for a group:
// Utils.abs(groupID.hashCode()) % partitions, where hashCode is Java's
// String.hashCode over UTF-16 code units with int32 wrap-around and
// Utils.abs is Math.abs except that MinInt32 maps to 0 (it is not
// Utils.toPositive, x & 0x7fffffff, which gives another partition for every
// negative hash). It must match Kafka bit for bit: clients find their
// coordinator through FindCoordinator, but a mixed or migrated cluster must
// agree on where each group's records live (Load skips records found on
// another partition). partitions <= 0 answers 0.
//
// Safe for concurrent use.
func PartitionFor(groupID string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	h := javaStringHash(groupID)
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// javaStringHash is java.lang.String.hashCode. Invalid UTF-8 decodes to
// U+FFFD per bad byte, as Java's UTF-8 decoder replaces malformed input.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}

// javaLength is java.lang.String.length: UTF-16 code units. Kafka checks
// offset.metadata.max.bytes against it, not against the byte length.
func javaLength(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
