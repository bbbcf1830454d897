// Package dashboard is Inlet's web page: the imports with their filters, one
// import live (server-sent events of GET /v1/imports/{id}/events), its
// failed rows and files, and an upload form with every option. It is plain
// HTML, CSS and JavaScript modules under ui/, embedded in the binary: no
// build step. The page calls the /v1 API like any client; it sends writes
// to its own origin unless told otherwise (ui/api.js), so it is served where
// reads and writes meet: the all-in-one server, or a projector behind an
// ingress that sends writes to the gateway (deploy/compose/api.conf).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/inlet-dev/inlet/internal/httpapi"
)

// Path is where the page is served.
const Path = "/ui/"

//go:embed ui
var files embed.FS

// Mount serves the page under Path and sends / there.
func Mount(r httpapi.Router) {
	ui, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	assets := http.StripPrefix(Path, http.FileServerFS(ui))
	r.HandleFunc("GET "+Path, func(w http.ResponseWriter, req *http.Request) {
		// Embedded files carry no modification time: without this a browser
		// could keep a page older than the server it talks to.
		w.Header().Set("Cache-Control", "no-cache")
		assets.ServeHTTP(w, req)
	})
	r.HandleFunc("GET /{$}", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, Path, http.StatusFound)
	})
}
