package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age/plugin"
	"github.com/spf13/cobra"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/export"
)

type decryptOptions struct {
	identities                    []string
	trust, format, separator, out string
	excel                         bool
}

func (a *app) decryptCmd() *cobra.Command {
	var o decryptOptions
	cmd := &cobra.Command{
		Use:   "decrypt --identity FILE --trust FILE [--format xlsx|pdf|csv|json|sormas|iris] [-o OUT] BUNDLE",
		Short: "Open an export bundle on the health office's machine",
		Long: `decrypt opens an export bundle with the health office's age identity and
writes the contact data for the tracing team:

  xlsx    (default) an Excel workbook: a cover sheet with the case, window,
          places, approvals and the bundle's digest; the contact list with
          every personal field as text (never a formula, never turned into a
          number or date), real date-time cells in German time, filters, a
          frozen header and a landscape print layout; a timeline of who was
          there when, with the requested window shaded
  pdf     the same for paper: cover page, timeline, contact list (A4 landscape)
  csv     a formula-safe CSV (--excel: ';' for German Excel and LibreOffice)
  json    everything, as JSON
  sormas  the SORMAS event-participant import layout
  iris    the guest list JSON of IRIS connect

Without --format the format follows the extension of -o (.xlsx, .pdf,
.csv, .json), else xlsx. Workbooks and PDFs need -o.

It checks the bundle against the trust file the health office pinned at
setup (--trust, written by 'registry trust export' at the city hall): the
registry instance's signature over the whole bundle and the signed
approvals of pinned approvers (one for a request the office filed, two for
one recorded from a letter). A bundle that fails, or one made with the
stock age tool, is refused. It also checks every record against the
metadata it was exported with and writes nothing unless every record is
sound. It prints the bundle's digest, the case, the window and who
approved.

The identity file may be protected with a passphrase ('age -p'; asked on
the terminal, or read from the file named by REGISTRY_PASSPHRASE_FILE) or
hold an age plugin identity (for example age-plugin-yubikey, so that the
key stays on a hardware token). CSV files are safe to open in Excel
and LibreOffice: no cell is ever evaluated as a formula, phone numbers keep
their leading +, the file is UTF-8 with a byte-order mark; use
--separator ';' for German Excel.

Run it on the health office's machine: this is the only place where the
contact data becomes readable.`,
		Example: `  registry decrypt --identity gesundheitsamt.key --trust rathaus.trust -o kontakte.xlsx GA-2026-0815.registry-export.age
  registry decrypt --identity gesundheitsamt.key --trust rathaus.trust -o kontakte.pdf GA-2026-0815.registry-export.age
  registry decrypt --identity gesundheitsamt.key --trust rathaus.trust --excel -o kontakte.csv GA-2026-0815.registry-export.age
  registry decrypt --identity gesundheitsamt.key --trust rathaus.trust --format sormas -o sormas.csv bundle.age`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDecrypt(args[0], &o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.identities, "identity", nil, "the health office's age identity `FILE` (repeat it for an old and a new key)")
	f.StringVar(&o.trust, "trust", "", "the trust `FILE` pinned at setup (instance and approver keys)")
	f.StringVar(&o.format, "format", "", "output format: xlsx, pdf, csv, json, sormas or iris (default: from the -o extension, else xlsx)")
	f.StringVar(&o.separator, "separator", ",", "CSV and SORMAS field separator (one character, ';' for German Excel)")
	f.BoolVar(&o.excel, "excel", false, "CSV for German Excel and LibreOffice: ';' as separator (UTF-8 with BOM and CRLF as always)")
	f.StringVarP(&o.out, "output", "o", "", "write to `FILE` instead of standard output (must not exist)")
	settings(f, "identity", "trust")
	return cmd
}

// decryptMemoryLimit is the soft memory limit of decrypt (unless
// GOMEMLIMIT is set): the age layers churn through short-lived buffers, and
// without a limit the garbage collector lets the workbook's build grow to
// about 170 MB at 100,000 records; with it about 105 MB, at the same speed
// (make bench, BenchmarkStreaming). A higher GOGC would buy speed with
// memory (GOGC=200: about a fifth faster, half as much memory again at
// 20,000 records; BenchmarkExportDecrypt): not taken, the rate is above
// 0.8 of raw age without it.
const decryptMemoryLimit = 96 << 20

func (a *app) runDecrypt(bundlePath string, o *decryptOptions) error {
	if os.Getenv("GOMEMLIMIT") == "" && o.format != "pdf" && strings.ToLower(filepath.Ext(o.out)) != ".pdf" {
		// The PDF holds its records in memory; under the limit its
		// garbage collector would run without pause.
		debug.SetMemoryLimit(decryptMemoryLimit)
	}
	if o.excel {
		o.separator = ";"
		if o.format == "" {
			o.format = "csv"
		}
	}
	sep, size := utf8.DecodeRuneInString(o.separator)
	if size == 0 || size != len(o.separator) || sep == '"' || sep == '\r' || sep == '\n' {
		return withHint(registry.Errorf(registry.EINVALID, "--separator must be one character"), "use ',' or ';'")
	}
	format := o.format
	if format == "" && o.out != "" {
		switch ext := strings.ToLower(filepath.Ext(o.out)); ext {
		case ".xlsx":
			format = "xlsx"
		case ".pdf":
			format = "pdf"
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			return withHint(registry.Errorf(registry.EINVALID, "cannot write %s: decrypt writes .xlsx, .pdf, .csv and .json files", o.out),
				"name the file .xlsx (LibreOffice and Excel open it; an .ods is not written), or give --format xlsx|pdf|csv|json|sormas|iris")
		}
	} else if format == "" {
		format = "xlsx"
	}
	if (format == "xlsx" || format == "pdf") && o.out == "" {
		return withHint(registry.Errorf(registry.EINVALID, "a %s file needs -o", format), "pass -o FILE.%s, or --format csv|json|sormas|iris for standard output", format)
	}
	// The output is written into a scratch file first (sealed to a key
	// only this process holds) and appears only once every record of the
	// bundle verified: a bundle that fails half-way leaves nothing.
	scratch, err := decryptScratch()
	if err != nil {
		return err
	}
	write, err := outputFormat(format, sep, a.now())
	if err != nil {
		return err
	}
	if o.out != "" {
		if _, err := os.Stat(o.out); err == nil {
			return registry.Errorf(registry.ECONFLICT, "%s exists already; choose another name", o.out)
		}
	}
	if o.trust == "" {
		return withHint(registry.Errorf(registry.EINVALID, "no trust file"), "pass --trust FILE: the file 'registry trust export' wrote at the city hall, pinned at setup")
	}
	trust, err := export.ReadTrust(o.trust)
	if err != nil {
		return err
	}
	if len(o.identities) == 0 {
		return withHint(registry.Errorf(registry.EINVALID, "no identity file"), "pass --identity FILE: the health office's age identity")
	}
	ui := plugin.NewTerminalUI(func(format string, v ...any) { fmt.Fprintf(a.stderr, "registry: "+format+"\n", v...) },
		func(format string, v ...any) { fmt.Fprintf(a.stderr, "registry: warning: "+format+"\n", v...) })
	ids, err := crypto.ReadIdentityFiles(o.identities, crypto.TerminalPassphrase(), ui)
	if err != nil {
		return err
	}
	in, err := os.Open(bundlePath)
	if err != nil {
		return err
	}
	defer in.Close()
	stream, err := export.Open(bufio.NewReaderSize(in, 1<<20), ids, trust)
	if err != nil {
		return err
	}
	f, err := scratch.Create()
	if err != nil {
		return err
	}
	defer f.Remove()
	if err := write(f, stream); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write decrypted output: %w", err)
	}
	if err := a.deliver(f, o.out); err != nil {
		return err
	}
	h := stream.BundleHeader()
	fmt.Fprintf(a.stderr, "registry: case %s, %s, window %s to %s: %d records\n",
		escaped(h.CaseRef), escaped(h.Office), local(h.From), local(h.To), h.Count)
	fmt.Fprintf(a.stderr, "registry: bundle sha256 %s\n", digestForms(stream.BundleDigest()))
	for _, ap := range h.Approvals {
		fmt.Fprintf(a.stderr, "registry: approved by %s (key %s) at %s; signed by registry instance %s\n",
			escaped(registry.ShowScripts(ap.Name)), keyIDOf(ap.PublicKey), local(ap.SignedAt), keyIDOf(h.Instance))
	}
	if o.out != "" {
		fmt.Fprintf(a.stderr, "registry: wrote %d records of case %s to %s\n", h.Count, h.CaseRef, o.out)
	}
	return nil
}

// keyIDOf returns the key id of a public key's text form.
func keyIDOf(s string) string {
	k, err := registry.ParsePublicKey(s)
	if err != nil {
		return "?"
	}
	return k.ID()
}

// decryptScratch is the scratch directory of decrypt: a private directory
// of the user in the system's temporary directory.
func decryptScratch() (*crypto.ScratchDir, error) {
	return crypto.OpenScratchDir(filepath.Join(os.TempDir(), fmt.Sprintf("registry-scratch-%d", os.Getuid())))
}

// deliver copies the finished scratch file to out (a new file, mode 0600)
// or, without out, to standard output.
func (a *app) deliver(f *crypto.Scratch, out string) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	if out == "" {
		_, err := io.Copy(a.stdout, r)
		return err
	}
	return writeFileAtomic(out, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

func outputFormat(format string, sep rune, now time.Time) (func(io.Writer, export.Source) error, error) {
	w, err := export.WriterFor(format, sep, now)
	if err != nil {
		return nil, withHint(err, "use xlsx, pdf, csv, json, sormas or iris")
	}
	return w, nil
}

// writeFileAtomic writes a new file (mode 0600, it holds contact data)
// that appears only complete, under its name, and never replaces an
// existing one. On Linux it is written as an unnamed file (O_TMPFILE) and
// linked into place when complete, so that a process killed half-way
// leaves nothing behind, not even a partial file; elsewhere (or on a file
// system without unnamed files) through a temporary file in the same
// directory, removed unless the process is killed.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, link, err := createUnnamed(filepath.Dir(path))
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = link(path)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// createUnnamedTemp is createUnnamed's fallback: a named temporary file,
// linked to its name when complete and removed on close.
func createUnnamedTemp(dir string) (*os.File, func(string) error, error) {
	tmp, err := os.CreateTemp(dir, ".registry-*")
	if err != nil {
		return nil, nil, err
	}
	link := func(path string) error {
		defer os.Remove(tmp.Name())
		return os.Link(tmp.Name(), path)
	}
	return tmp, link, nil
}
