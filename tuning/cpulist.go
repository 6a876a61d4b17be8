package tuning

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// ParseCPUList parses the kernel's list format ("0-3,8,10-11"; empty means
// no CPUs) into ascending, de-duplicated CPU numbers. Pure; safe anywhere.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	cpus := []int{}
	if s == "" {
		return cpus, nil
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad cpu list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	sort.Ints(cpus)
	return cpus, nil
}

// FormatCPUList is the inverse of ParseCPUList: ascending ranges joined by
// commas. Pure; safe anywhere.
func FormatCPUList(cpus []int) string {
	c := append([]int(nil), cpus...)
	sort.Ints(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] <= c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", c[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", c[i], c[j])
		}
		i = j + 1
	}
	return b.String()
}

// parseCPUMask parses a hex mask as in rps_cpus or smp_affinity
// ("ff,00000003", groups of 32 bits separated by commas).
func parseCPUMask(s string) ([]int, error) {
	hex := strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if hex == "" {
		return []int{}, nil
	}
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		return nil, fmt.Errorf("bad cpu mask %q", s)
	}
	cpus := []int{}
	for i := 0; i < n.BitLen(); i++ {
		if n.Bit(i) == 1 {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// formatCPUMask renders CPUs as the hex mask the kernel accepts, in 32-bit
// comma-separated groups like it prints them.
func formatCPUMask(cpus []int) string {
	n := new(big.Int)
	for _, c := range cpus {
		n.SetBit(n, c, 1)
	}
	hex := n.Text(16)
	var groups []string
	for len(hex) > 8 {
		groups = append([]string{hex[len(hex)-8:]}, groups...)
		hex = hex[:len(hex)-8]
	}
	groups = append([]string{hex}, groups...)
	return strings.Join(groups, ",")
}
