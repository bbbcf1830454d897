// Package decode reads one import file (CSV, JSON array, JSONL, XLSX) as a
// stream of records and prevalidates them (spec §4, phase 1). Memory is
// bounded by one record: nothing holds the whole file (an XLSX upload is
// spooled to a temporary file, which the format's random access needs).
//
// Codes: rows the decoder cannot read are rejected with parse.csv,
// parse.json or parse.xlsx; a file it cannot read at all is a *FileError with
// one of those codes or mapping.invalid. Rows that are imported can carry
// warnings (rows.Row.Warnings, never a rejection):
//
//	code                    when
//	warning.trimmed         a string value had leading/trailing whitespace; it was removed
//	warning.unknown_column  a column/key maps to no field of a schema that allows unknown
//	                        fields; the row had a value in it, which was not imported
//
// README.md in this directory is the table the project's error-code
// reference links to, with how each format is read.
package decode
