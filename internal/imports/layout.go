package imports

// The blob store's layout: every key Inlet writes is made here.
//
//	imports/<id>/                      everything of one import (cleanup and expiry remove the prefix)
//	  request.json                     the request of an import waiting for its file (gateway)
//	  import.json, terminal.json       the import object at its start and at its end
//	  interrupt.json                   a stop request (interrupt or deadline)
//	  header.json                      the file's header, as prevalidation read it
//	  source/<name>                    the file (source/upload.<ext> when uploaded by URL)
//	  <phase>/out|rejects|keys/<batch> a phase's output, rejected rows and key summary per batch
//	  <phase>/stats/<batch>.json       a batch's stats: written last, its commit mark
//	  <phase>/sums.json                the phase's sums, once every batch committed
//	idempotency/<org>/<sha256>.json    the first create under an Idempotency-Key (gateway)
//	requests/<org>/<sha256/16>.json    the import a client's Nats-Msg-Id created (intake)

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/events"
)

// Root holds every import's objects, one folder each.
const Root = "imports/"

// Prefix is the folder of import id: everything it leaves in the blob store
// is under it, so cleanup and expiry remove one prefix.
func Prefix(id string) string { return Root + id + "/" }

func ImportKey(id string) string   { return Prefix(id) + "import.json" }
func TerminalKey(id string) string { return Prefix(id) + "terminal.json" }

func InterruptKey(id string) string       { return Prefix(id) + "interrupt.json" }
func RequestKey(id string) string         { return Prefix(id) + "request.json" }
func HeaderKey(id string) string          { return Prefix(id) + "header.json" }
func SourceKey(id, name string) string    { return Prefix(id) + "source/" + name }
func PhasePrefix(id, phase string) string { return Prefix(id) + phase + "/" }
func OutKey(id, phase string, b int) string {
	return fmt.Sprintf("%s%s/out/%06d.ndjson", Prefix(id), phase, b)
}
func RejectsKey(id, phase string, b int) string {
	return fmt.Sprintf("%s%s/rejects/%06d.ndjson", Prefix(id), phase, b)
}
func KeysKey(id, phase string, b int) string {
	return fmt.Sprintf("%s%s/keys/%06d.bin", Prefix(id), phase, b)
}
func StatsPrefix(id, phase string) string { return Prefix(id) + phase + "/stats/" }

// AttemptKey holds how far a barrier phase's work on the whole file had
// got when its latest delivery began (pipeline's resume rule).
func AttemptKey(id, phase string) string { return Prefix(id) + phase + "/attempt.json" }

// SumsKey holds a completed phase's PhaseSums: the sum of every batch's
// stats, written once the phase's last batch committed, so that the gate and
// the end of an import read one object per phase instead of every batch's.
func SumsKey(id, phase string) string { return Prefix(id) + phase + "/sums.json" }
func StatsKey(id, phase string, b int) string {
	return fmt.Sprintf("%s%06d.json", StatsPrefix(id, phase), b)
}

// StatsBatch is the batch number of a StatsKey of phase.
func StatsBatch(id, phase, key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, StatsPrefix(id, phase))
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".json")
	if !ok {
		return 0, false
	}
	b, err := strconv.Atoi(digits)
	return b, err == nil && b >= 0
}

// UploadName is the base name (before the extension) of a file uploaded
// through the import's upload link.
const UploadName = "upload"

// Ext is the file extension of a format (".csv", ".json", ".jsonl", ".xlsx").
func Ext(format events.Format) string {
	if format == "" {
		format = events.FormatCSV
	}
	return "." + string(format)
}

// UploadKey is where the file of import id in format is uploaded to.
func UploadKey(id string, format events.Format) string { return SourceKey(id, UploadName+Ext(format)) }

// UploadImportID is the import id of an UploadKey; ok is false for any other key.
func UploadImportID(key string) (id string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0]+"/" != Root || parts[2] != "source" ||
		!strings.HasPrefix(parts[3], UploadName+".") || !events.ValidToken(parts[1]) {
		return "", false
	}
	return parts[1], true
}

// IdempotencyKey is where the first create under an Idempotency-Key of org
// is recorded.
func IdempotencyKey(org, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "idempotency/" + org + "/" + hex.EncodeToString(sum[:]) + ".json"
}

// MsgIDKey is where the import created by a client's message id (its
// Nats-Msg-Id) in org is recorded, for redeliveries beyond JetStream's
// duplicate window.
func MsgIDKey(org, msgID string) string {
	sum := sha256.Sum256([]byte(msgID))
	return "requests/" + org + "/" + hex.EncodeToString(sum[:16]) + ".json"
}
