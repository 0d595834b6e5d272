package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagError adds to an unknown-flag error the closest flag of the command,
// when one is close enough to be a typo: "--recipent" → "--recipients".
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return withHint(err, "see %s --help", cmd.CommandPath())
	}
	best, dist := "", 4
	visit := func(f *pflag.Flag) {
		if d := levenshtein(name, f.Name); d < dist || d == dist && best == "" {
			best, dist = f.Name, d
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if best == "" || dist > max(2, len(name)/3) {
		return withHint(err, "see %s --help", cmd.CommandPath())
	}
	return withHint(err, "did you mean --%s?", best)
}

// levenshtein is the edit distance of a and b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
