package resources

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/rows"
)

// SheetKind is what a spreadsheet number cell's number format makes of it.
type SheetKind uint8

// Kinds of spreadsheet numbers.
const (
	SheetNumberPlain    SheetKind = iota // a number (General, 0.00, #,##0, 00000…)
	SheetNumberDate                      // a date format: the number is a date serial
	SheetNumberDateTime                  // a date-and-time format
	SheetNumberTime                      // a time-of-day format
)

// SheetNumber is a number cell of a spreadsheet, as the XLSX decoder found
// it: spreadsheets store dates, zip codes and long ids as numbers, and only
// the field a cell lands in says which it was meant to be (CoerceSheetNumber).
type SheetNumber struct {
	// Value is the stored number, as the file has it ("45292",
	// "0.30000000000000004", "1.2345678901234E+15").
	Value string
	Kind  SheetKind
	// Shown is the text the sheet displays for a format that lays digits
	// out ("00000" shows 501 as 00501); "" for other formats.
	Shown string
	// Date1904 is the workbook's date system: serial 0 is 1904-01-01
	// rather than 1900-01-00 (Excel for Mac before 2011).
	Date1904 bool
}

// sheetDigits is Excel's precision: a double shows 15 significant digits,
// so 0.1+0.2 reads 0.3 and a 16-digit id typed in a cell was already cut.
const sheetDigits = 15

// Number is the value to 15 significant digits in plain decimal notation
// (no exponent, no float noise): what the sheet shows under General, and
// what a number field receives. ok is false when Value is not a number.
func (n SheetNumber) Number() (string, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", false
	}
	rounded, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', sheetDigits, 64), 64)
	return strconv.FormatFloat(rounded, 'f', -1, 64), true
}

// Text is the cell as text, for a field that takes text and for the row's
// raw copy: a date or time as ISO 8601 (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss,
// hh:mm:ss), a number laid out by its format as shown (leading zeros kept),
// any other number as Number.
func (n SheetNumber) Text() string {
	if n.Kind != SheetNumberPlain {
		if t, err := n.Time(); err == nil {
			switch n.Kind {
			case SheetNumberDate:
				return t.Format(time.DateOnly)
			case SheetNumberDateTime:
				return t.Format("2006-01-02T15:04:05")
			}
		}
		if t, err := n.timeOfDay(); err == nil && n.Kind == SheetNumberTime {
			return t.Format(time.TimeOnly)
		}
	}
	if n.Shown != "" {
		return n.Shown
	}
	if s, ok := n.Number(); ok {
		return s
	}
	return n.Value
}

// maxSerial is 9999-12-31, the last day a spreadsheet has.
const maxSerial = 2958465

// Time is the date serial as a time (UTC: a spreadsheet has no zone), to
// the nearest second. In the 1900 system serial 1 is 1900-01-01 and serial
// 60 is 29 February 1900, a day that never was: Excel kept Lotus 1-2-3's
// leap-year bug, so serials before it count from 1899-12-31 and serials
// after it from 1899-12-30. In the 1904 system serial 0 is 1904-01-01.
func (n SheetNumber) Time() (time.Time, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("%q is not a date serial", n.Value)
	}
	days := math.Floor(f)
	var base time.Time
	switch {
	case f < 0 || days > maxSerial:
		return time.Time{}, fmt.Errorf("date serial %s is outside the dates a spreadsheet has", n.Value)
	case n.Date1904:
		base = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	case days == 0:
		return time.Time{}, fmt.Errorf("date serial %s is a time of day without a date", n.Value)
	case days == 60:
		return time.Time{}, fmt.Errorf("date serial 60 is 29 February 1900, a day that does not exist (a spreadsheet's 1900 leap-year bug)")
	case days < 60:
		base = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC)
	default:
		base = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	}
	ms := math.Round((f - days) * 86400e3)
	t := base.AddDate(0, 0, int(days)).Add(time.Duration(ms) * time.Millisecond)
	return t.Round(time.Second), nil
}

// timeOfDay is the time part of a serial (a time format shows only it):
// on 0000-01-01, to the nearest second.
func (n SheetNumber) timeOfDay() (time.Time, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return time.Time{}, fmt.Errorf("%q is not a time serial", n.Value)
	}
	secs := int64(math.Round((f-math.Floor(f))*86400)) % 86400
	return time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(secs) * time.Second), nil
}

// CoerceSheetNumber is CoerceCell for a number cell of a spreadsheet. The
// field decides what the number was meant to be:
//   - a string field of format date, date-time or time takes a date serial
//     (whatever the cell's format) as YYYY-MM-DD, RFC 3339 in UTC
//     (YYYY-MM-DDThh:mm:ssZ) or hh:mm:ssZ;
//   - a number, integer or boolean field takes the number (Number: 15
//     significant digits);
//   - any other field takes the text (Text: ISO dates for date formats,
//     leading zeros of a 00000 format, no exponent for a long id).
func (r *Resource) CoerceSheetNumber(field string, n SheetNumber) (v any, warning, problem *rows.Problem) {
	types := r.FieldTypes(field)
	takesString := len(types) == 0 || contains(types, "string")
	takesNumber := contains(types, "integer") || contains(types, "number") || contains(types, "boolean")
	if takesString && !takesNumber {
		if layout := serialLayouts[r.FieldFormat(field)]; layout != "" {
			t, err := n.Time()
			if r.FieldFormat(field) == "time" {
				t, err = n.timeOfDay()
			}
			if err != nil {
				return nil, nil, &rows.Problem{Code: CodeFormat, Field: field, Message: fmt.Sprintf("%s: %v", field, err)}
			}
			return t.Format(layout), nil, nil
		}
		return n.Text(), nil, nil
	}
	if num, ok := n.Number(); ok && takesNumber {
		return r.CoerceCell(field, num)
	}
	return r.CoerceCell(field, n.Text())
}

// serialLayouts: how a date serial is written for a string field of a
// JSON Schema date or time format.
var serialLayouts = map[string]string{
	"date":      time.DateOnly,
	"date-time": "2006-01-02T15:04:05Z07:00",
	"time":      "15:04:05Z07:00",
}
