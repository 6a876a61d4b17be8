package main

import (
	"os"

	"github.com/sluicemq/sluice/tuning"
)

// tune only reads the host unless --apply is given; see package tuning.
func init() {
	register("tune", "check host settings for running sluice", func(args []string) int {
		return tuning.Run(os.Stdout, args)
	})
}
