// Package testenv starts the real dependencies tests run against (MinIO,
// PostgreSQL) as throw-away local processes. Tests skip when a server binary
// is missing, except under CI=true, where they fail so that a broken CI
// image cannot turn integration tests silently green.
package testenv
