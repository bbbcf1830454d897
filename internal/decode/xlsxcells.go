package decode

import (
	"archive/zip"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// cellTypes reads, beside excelize's row iterator, what that iterator does
// not tell: which cells of a row are numbers, their stored value and their
// style. A spreadsheet stores dates, zip codes and ids as numbers, and only
// the cell's type and number format tell them from text typed as digits.
// It streams the same worksheet part of the spooled file (tokens only, one
// row at a time), so memory stays bounded by a row.
type cellTypes struct {
	zr      *zip.ReadCloser
	part    io.ReadCloser
	dec     *xml.Decoder
	pending int // the row number of a <row> read ahead, 0 if none
	lastRow int
}

// numberCell is a number cell: its style index and stored value.
type numberCell struct {
	style int
	value string
}

// openCellTypes opens the worksheet called sheet in the spooled workbook.
func openCellTypes(spool, sheet string) (*cellTypes, error) {
	zr, err := zip.OpenReader(spool)
	if err != nil {
		return nil, err
	}
	c := &cellTypes{zr: zr}
	name, err := sheetPart(&zr.Reader, sheet)
	if err != nil {
		_ = zr.Close()
		return nil, err
	}
	for _, f := range zr.File {
		if strings.TrimPrefix(f.Name, "/") == name {
			if c.part, err = f.Open(); err != nil {
				_ = zr.Close()
				return nil, err
			}
			c.dec = xml.NewDecoder(c.part)
			return c, nil
		}
	}
	_ = zr.Close()
	return nil, fmt.Errorf("worksheet part %s is missing", name)
}

// sheetPart finds the part of a sheet: the workbook names it by
// relationship id, the workbook's relationships give the part.
func sheetPart(zr *zip.Reader, sheet string) (string, error) {
	var wb struct {
		Sheets []struct {
			Name string `xml:"name,attr"`
			RID  string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	var rels struct {
		Rels []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := readXMLPart(zr, "xl/workbook.xml", &wb); err != nil {
		return "", err
	}
	if err := readXMLPart(zr, "xl/_rels/workbook.xml.rels", &rels); err != nil {
		return "", err
	}
	for _, s := range wb.Sheets {
		if !strings.EqualFold(s.Name, sheet) {
			continue
		}
		for _, r := range rels.Rels {
			if r.ID == s.RID {
				if strings.HasPrefix(r.Target, "/") {
					return strings.TrimPrefix(r.Target, "/"), nil
				}
				return path.Join("xl", r.Target), nil
			}
		}
	}
	return "", fmt.Errorf("sheet %q has no worksheet part", sheet)
}

// maxMetaPart bounds the workbook and relationship parts read whole.
const maxMetaPart = 16 << 20

func readXMLPart(zr *zip.Reader, name string, v any) error {
	for _, f := range zr.File {
		if strings.TrimPrefix(f.Name, "/") != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		return xml.NewDecoder(io.LimitReader(rc, maxMetaPart)).Decode(v)
	}
	return fmt.Errorf("part %s is missing", name)
}

// row returns the number cells of worksheet row n (1-based), by 0-based
// column; rows must be asked for in ascending order.
func (c *cellTypes) row(n int) (map[int]numberCell, error) {
	for {
		if c.pending == 0 {
			r, err := c.nextRow()
			if err != nil || r == 0 {
				return nil, err
			}
			c.pending = r
		}
		switch {
		case c.pending > n:
			return nil, nil
		case c.pending < n:
			if err := c.skipRow(); err != nil {
				return nil, err
			}
			c.pending = 0
			continue
		}
		c.pending = 0
		return c.cells()
	}
}

// nextRow reads up to the next <row> and returns its number (0 at the end).
func (c *cellTypes) nextRow() (int, error) {
	for {
		tok, err := c.dec.RawToken()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "row" {
			c.lastRow++ // a row without r follows the one before it
			if v := attr(se, "r"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return 0, fmt.Errorf("row number %q", v)
				}
				c.lastRow = n
			}
			return c.lastRow, nil
		}
	}
}

func (c *cellTypes) skipRow() error {
	_, err := c.cellsOrSkip(true)
	return err
}

func (c *cellTypes) cells() (map[int]numberCell, error) { return c.cellsOrSkip(false) }

// cellsOrSkip reads the current row's cells up to </row>.
func (c *cellTypes) cellsOrSkip(skip bool) (map[int]numberCell, error) {
	var out map[int]numberCell
	col := -1
	var cur *numberCell
	inV := false
	for {
		tok, err := c.dec.RawToken()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "c":
				col++
				if ref := attr(t, "r"); ref != "" {
					x, _, err := excelize.CellNameToCoordinates(ref)
					if err != nil {
						return nil, err
					}
					col = x - 1
				}
				cur = nil
				if typ := attr(t, "t"); !skip && (typ == "" || typ == "n") {
					style, _ := strconv.Atoi(attr(t, "s"))
					cur = &numberCell{style: style}
				}
			case "v":
				inV = cur != nil
			}
		case xml.CharData:
			if inV {
				cur.value += string(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v":
				inV = false
			case "c":
				if cur != nil && strings.TrimSpace(cur.value) != "" {
					if out == nil {
						out = map[int]numberCell{}
					}
					out[col] = *cur
				}
				cur = nil
			case "row":
				return out, nil
			}
		}
	}
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (c *cellTypes) Close() error {
	if c.part != nil {
		_ = c.part.Close()
	}
	return c.zr.Close()
}
