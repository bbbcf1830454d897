package app

import (
	"os"
	"runtime/debug"
)

// AllInOneMemory is the all-in-one server's memory budget (issue 6: 512 MiB
// peak RSS), less room for what the Go runtime does not count: with batches
// of 10,000 rows the embedded default peaked at 521 MiB under a 448 MiB
// limit, 496 MiB under this one at 10M rows; SQLite's page caches, outside
// the Go heap, are bounded by sqlite.MemoryLimit (64 MiB) since.
const AllInOneMemory = 400 << 20

// ServiceMemory is the budget of one service of the separate shape (issue 6:
// 256 MiB peak RSS a process), less room for the rest: processing, the
// largest, peaked 27 MiB above a 224 MiB limit with batches of 10,000 rows.
const ServiceMemory = 208 << 20

// TuneGC lets the heap grow to five times what is live (GOGC 400) under a
// memory limit of budget bytes, unless GOGC or GOMEMLIMIT say otherwise.
// Measured on a 1M-row import in the all-in-one: the process's CPU 57.9 →
// 51.6 s, its peak RSS 190 → 345 MiB; the limit keeps a bigger file from
// going further (the collector then runs more often instead).
func TuneGC(budget int64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(budget)
}
