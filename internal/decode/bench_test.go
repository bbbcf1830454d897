package decode

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

func customersCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("email,external_id,name,age,vip,company_code,signed_up\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "user%d@example.com,ext-%d,\"Name %d, Jr\",%d,%s,C%03d,2024-%02d-%02d\r\n",
			i, i, i, i%90, []string{"yes", "no"}[i%2], i%500, 1+i%12, 1+i%28)
	}
	return b.Bytes()
}

// BenchmarkPrepareCSV decodes and prevalidates a 100k-row customers file:
// the per-row cost of the prevalidation phase without I/O.
func BenchmarkPrepareCSV(b *testing.B) {
	const n = 100_000
	data := customersCSV(n)
	res := resource(b, "customers")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		src, err := Open("csv", bytes.NewReader(data), Options{})
		if err != nil {
			b.Fatal(err)
		}
		m, err := NewMapping(src.Header(), nil, res)
		if err != nil {
			b.Fatal(err)
		}
		rowsDone := 0
		for {
			rec, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, probs := Prepare(res, m, rec); probs != nil {
				b.Fatalf("row %d: %v", rec.Num, probs)
			}
			rowsDone++
		}
		if rowsDone != n {
			b.Fatalf("%d rows", rowsDone)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
