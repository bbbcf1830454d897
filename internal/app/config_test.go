package app

import "testing"

// The presign settings reach the configuration: without them a presigned
// URL names the internal S3 endpoint (minio:9000 in docker-compose), which
// a client outside the deployment cannot use (issue 9).
func TestConfigReadsS3PresignSettings(t *testing.T) {
	t.Setenv("INLET_S3_ENDPOINT", "minio:9000")
	t.Setenv("INLET_S3_PUBLIC_ENDPOINT", "localhost:9000")
	t.Setenv("INLET_S3_REGION", "eu-west-1")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.S3Endpoint != "minio:9000" || c.S3PublicEndpoint != "localhost:9000" || c.S3Region != "eu-west-1" {
		t.Fatalf("endpoint %q, public endpoint %q, region %q", c.S3Endpoint, c.S3PublicEndpoint, c.S3Region)
	}
	t.Setenv("INLET_S3_PUBLIC_ENDPOINT", "")
	t.Setenv("INLET_S3_REGION", "")
	if c, err = ConfigFromEnv(); err != nil || c.S3PublicEndpoint != "" || c.S3Region != "" {
		t.Fatalf("unset: %+v, %v", c, err)
	}
}
