package group

import "testing"

func TestPartitionFor(t *testing.T) {
	f := func(group string, partitions, want int32) {
		t.Helper()
		if got := PartitionFor(group, partitions); got != want {
			t.Fatalf("PartitionFor(%q, %d) = %d, want %d", group, partitions, got, want)
		}
	}
	// Java's String.hashCode is s[0]*31^(n-1) + ... + s[n-1] over UTF-16 units, int32:
	f("", 50, 0)   // 0
	f("a", 50, 47) // 97
	// "group": 103*31^4 + 114*31^3 + 111*31^2 + 117*31 + 112
	//        = 95122663 + 3396174 + 106671 + 3627 + 112 = 98629247; % 50 = 47
	f("group", 50, 47)
	f("hello", 50, 22) // 99162322, the textbook value
	// "consumer-group" hashes to -1738392088. Kafka's Utils.abs is
	// (n == Integer.MIN_VALUE) ? 0 : Math.abs(n): 1738392088 % 50 = 38, not
	// the 10 that n & 0x7fffffff (409091560, Utils.toPositive) would give.
	f("consumer-group", 50, 38)
	f("elsewhere", 50, 4) // -930968754: 930968754 % 50, not 1216514894 % 50 = 44
	// "polygenelubricants" hashes to exactly Integer.MIN_VALUE: Utils.abs gives 0.
	f("polygenelubricants", 50, 0)
	f("Aa", 50, 12) // 65*31 + 97 = 2112
	f("BB", 50, 12) // 66*31 + 66 = 2112: the classic collision
	f("é", 50, 33)  // U+00E9 = 233: code units, not UTF-8 bytes
	// U+1F600 is the surrogate pair D83D DE00: 55357*31 + 56832 = 1772899.
	f("😀", 50, 49)
	f("my-consumer-group", 50, 13) // 1513705513
	f("group", 1, 0)
	f("group", 0, 0) // no partitions: no division by zero
}

func TestJavaLength(t *testing.T) {
	f := func(s string, want int) {
		t.Helper()
		if got := javaLength(s); got != want {
			t.Fatalf("javaLength(%q) = %d, want %d", s, got, want)
		}
	}
	f("", 0)
	f("abc", 3)
	f("é", 1)
	f("😀", 2)
}
