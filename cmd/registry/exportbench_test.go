package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// benchClock is the test clock of BenchmarkExportDecrypt's installation.
const benchClock = "2026-11-24T18:00:00Z"

// BenchmarkExportDecrypt measures what the health office waits for, with
// the real binary: `registry export` of REGISTRY_BENCH_RECORDS visits
// (default 10,000; make bench: 100,000) registered through `serve`, and
// `registry decrypt` of the bundle to CSV and to the XLSX workbook, for
// post-quantum hybrid and for X25519 keys. Each rate stands beside the raw
// age rate of the same layer on the same cores in the same run (a process
// that runs age.Decrypt as often on GOMAXPROCS goroutines, before and
// after the commands): the export beside the outer layer's (the day key),
// decrypt beside the inner layer's (the office's key). Goal: each
// ratio at least 0.8, peak memory flat. It also reports the bundle's bytes
// per record.
func BenchmarkExportDecrypt(b *testing.B) {
	n := 10_000
	if s := os.Getenv("REGISTRY_BENCH_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 10 {
			b.Fatalf("REGISTRY_BENCH_RECORDS=%q is not a number of at least 10", s)
		}
	}
	bin := filepath.Join(buildBinary(b), "registry")
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		b.Run(kind.String(), func(b *testing.B) {
			inst := newBenchInstallation(b, bin, kind, n)
			bundle := filepath.Join(inst.dir, "bundle.age")
			outer, dayKey := inst.outerSample(b), filepath.Join(inst.dir, "keys", "epoch-"+benchClock[:10]+".age")
			outerRaw := rawRate(b, n, outer, dayKey)
			export := inst.timed(b, "export", inst.request, "-o", bundle, "--as", "Frau DSB")
			outerRaw = max(outerRaw, rawRate(b, n, outer, dayKey))
			fi, err := os.Stat(bundle)
			if err != nil {
				b.Fatal(err)
			}
			inner := inst.innerSample(b)
			innerRaw := rawRate(b, n, inner, inst.officeKey)
			csv := inst.timed(b, "decrypt", "--identity", inst.officeKey, "--trust", inst.trust, "-o", filepath.Join(inst.dir, "kontakte.csv"), bundle)
			xlsx := inst.timed(b, "decrypt", "--identity", inst.officeKey, "--trust", inst.trust, "-o", filepath.Join(inst.dir, "kontakte.xlsx"), bundle)
			innerRaw = max(innerRaw, rawRate(b, n, inner, inst.officeKey))
			b.ReportMetric(float64(n)/export.took.Seconds(), "export-records/s")
			b.ReportMetric(outerRaw, "raw-outer/s")
			b.ReportMetric(float64(n)/export.took.Seconds()/outerRaw, "export-ratio")
			b.ReportMetric(float64(export.maxRSS)/(1<<20), "export-peak-rss-MB")
			b.ReportMetric(float64(n)/csv.took.Seconds(), "csv-records/s")
			b.ReportMetric(float64(n)/xlsx.took.Seconds(), "xlsx-records/s")
			b.ReportMetric(innerRaw, "raw-inner/s")
			b.ReportMetric(float64(n)/csv.took.Seconds()/innerRaw, "csv-ratio")
			b.ReportMetric(float64(n)/xlsx.took.Seconds()/innerRaw, "xlsx-ratio")
			b.ReportMetric(float64(csv.maxRSS)/(1<<20), "csv-peak-rss-MB")
			b.ReportMetric(float64(xlsx.maxRSS)/(1<<20), "xlsx-peak-rss-MB")
			b.ReportMetric(float64(fi.Size())/float64(n), "bundle-bytes/record")
		})
	}
}

// benchInstallation is a SQLite installation with n registered visits and
// an approved request over all of them.
type benchInstallation struct {
	bin, dir, officeKey, trust, request string
	env                                 []string
	kind                                crypto.KeyKind
}

func newBenchInstallation(b *testing.B, bin string, kind crypto.KeyKind, n int) *benchInstallation {
	b.Helper()
	dir := b.TempDir()
	addr := freeAddr(b)
	in := &benchInstallation{bin: bin, dir: dir, officeKey: filepath.Join(dir, "office.key"), trust: filepath.Join(dir, "rathaus.trust"), kind: kind}
	in.env = append(os.Environ(), "REGISTRY_TEST_NOW="+benchClock, "REGISTRY_AS=it", "REGISTRY_DB="+filepath.Join(dir, "registry.db"),
		"REGISTRY_KEYSTORE="+filepath.Join(dir, "keys"), "REGISTRY_RECIPIENTS="+filepath.Join(dir, "recipients.txt"),
		"REGISTRY_LISTEN="+addr, "REGISTRY_DAY_KEYS="+kind.String(), "REGISTRY_LOG_LEVEL=warn")
	rcpt := in.run(b, "keygen", "--kind", kind.String(), "-o", in.officeKey)
	os.WriteFile(filepath.Join(dir, "recipients.txt"), []byte(rcpt), 0o644)
	in.run(b, "migrate")
	in.run(b, "sites", "add", "rathaus", "--name", "Rathaus")
	intake, office := filepath.Join(dir, "intake.token"), filepath.Join(dir, "office.token")
	in.run(b, "tokens", "create", "--role", "intake", "-o", intake)
	in.run(b, "tokens", "create", "--role", "health-office", "--office", "ga", "-o", office)
	approver := filepath.Join(dir, "dsb.key")
	pub := regexp.MustCompile(`public key: (\S+)`).FindStringSubmatch(in.run(b, "approvers", "keygen", "-o", approver))[1]
	in.run(b, "approvers", "add", "Frau DSB", "--public-key", pub)
	in.run(b, "trust", "export", "-o", in.trust)

	var stderr lockedBuffer
	srv := exec.Command(bin, "serve")
	srv.Env, srv.Stderr = in.env, &stderr
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }
	defer stop()
	url := "http://" + addr
	waitHTTP(b, url+"/readyz", &stderr)
	registerParties(b, url, readToken(b, intake), n)
	if b.Failed() {
		b.FailNow()
	}
	body := `{"case_ref":"GA-Bench","office":"Gesundheitsamt","legal_basis":"§ 25 IfSG","contact":"Herr Beispiel",` +
		`"from":"2026-11-24T07:00:00Z","to":"2026-11-24T17:30:00Z","sites":["rathaus"]}`
	resp := post(b, url+"/v1/trace-requests", readToken(b, office), body)
	var created struct{ ID string }
	if err := json.Unmarshal(resp, &created); err != nil || created.ID == "" {
		b.Fatalf("file the request: %s", resp)
	}
	in.request = created.ID
	stop()
	in.run(b, "requests", "approve", in.request, "--key", approver)
	return in
}

// registerParties registers n visits over HTTP in parties of ten (a
// visitor and nine companions), check-ins spread over the day, on 32
// connections.
func registerParties(b *testing.B, url, token string, n int) {
	b.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	defer c.CloseIdleConnections()
	parties := (n + 9) / 10
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Date(2026, 11, 24, 7, 30, 0, 0, time.UTC)
	for range 32 {
		wg.Go(func() {
			for p := int(next.Add(1) - 1); p < parties && !b.Failed(); p = int(next.Add(1) - 1) {
				size := min(10, n-p*10)
				var comp []string
				for i := 1; i < size; i++ {
					comp = append(comp, fmt.Sprintf(`{"given_name":"Begleitung%d","family_name":"Gruppe%05d","phone":"+49 221 555%04d"}`, i, p, i))
				}
				in := start.Add(time.Duration(p) * 9 * time.Hour / time.Duration(parties))
				body := fmt.Sprintf(`{"site":"rathaus","given_name":"Erika","family_name":"Gruppe%05d","street":"Heidestraße","house_number":"17",`+
					`"postcode":"51147","city":"Köln","phone":"+49 221 1234567","check_in":%q,"check_out":%q,"companions":[%s]}`,
					p, in.Format(time.RFC3339), in.Add(45*time.Minute).Format(time.RFC3339), strings.Join(comp, ","))
				post(b, url+"/v1/visits", token, body)
			}
		})
	}
	wg.Wait()
}

func post(b *testing.B, url, token, body string) []byte {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err) // on the load's goroutines: no Fatal
		return nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		b.Errorf("POST %s: %d %.300s", url, resp.StatusCode, out)
	}
	return out
}

func readToken(b testing.TB, path string) string {
	t, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(string(t))
}

func (in *benchInstallation) run(b *testing.B, args ...string) string {
	b.Helper()
	cmd := exec.Command(in.bin, args...)
	cmd.Env = in.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("registry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// run is one timed command: its wall time and peak resident memory.
type timedRun struct {
	took   time.Duration
	maxRSS int64
}

func (in *benchInstallation) timed(b *testing.B, args ...string) timedRun {
	b.Helper()
	cmd := exec.Command(in.bin, args...)
	cmd.Env = in.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("registry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	took := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return timedRun{took: took, maxRSS: ru.Maxrss << 10}
}

// dayIdentity is the epoch key of the visits' day.
func (in *benchInstallation) dayIdentity(b *testing.B) age.Identity {
	ks, err := crypto.OpenKeyStore(filepath.Join(in.dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	id, err := ks.Identity(registry.Day(benchClock[:10]))
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// outerSample is a record sealed as serve seals one, to the day's key.
func (in *benchInstallation) outerSample(b *testing.B) []byte {
	ks, err := crypto.OpenKeyStore(filepath.Join(in.dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	rcpt, err := ks.Recipient(registry.Day(benchClock[:10]))
	if err != nil {
		b.Fatal(err)
	}
	rs, err := crypto.ReadRecipients(filepath.Join(in.dir, "recipients.txt"))
	if err != nil {
		b.Fatal(err)
	}
	c := benchContactOf()
	sealed, err := crypto.NewSealer(rs).Seal(c, rcpt)
	if err != nil {
		b.Fatal(err)
	}
	return sealed
}

// innerSample is the inner layer of outerSample.
func (in *benchInstallation) innerSample(b *testing.B) []byte {
	inner, err := crypto.OpenOuter(in.outerSample(b), in.dayIdentity(b))
	if err != nil {
		b.Fatal(err)
	}
	return inner
}

func benchContactOf() *registry.Contact {
	in, _ := time.Parse(time.RFC3339, "2026-11-24T09:00:00Z")
	return &registry.Contact{Version: registry.ContactVersion, GivenName: "Erika", FamilyName: "Gruppe00001", Street: "Heidestraße",
		HouseNumber: "17", Postcode: "51147", City: "Köln", Phone: "+49 221 1234567", VisitID: registry.NewVisitID(in), Site: "rathaus", CheckIn: in}
}

// rawDecryptEnv makes the test binary the baseline process of
// BenchmarkExportDecrypt: "N:CIPHERTEXT-FILE:IDENTITY-FILE".
const rawDecryptEnv = "REGISTRY_BENCH_RAW_DECRYPT"

// rawDecryptMain decrypts the ciphertext N times with plain age.Decrypt on
// GOMAXPROCS goroutines and returns the exit code.
func rawDecryptMain(spec string) int {
	parts := strings.SplitN(spec, ":", 3)
	n, err := strconv.Atoi(parts[0])
	if len(parts) != 3 || err != nil {
		fmt.Fprintln(os.Stderr, "bad", rawDecryptEnv)
		return 2
	}
	ct, err := os.ReadFile(parts[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ids, err := crypto.ReadIdentities(parts[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 4<<10) // reused: the baseline allocates only what age does
			for next.Add(1) <= int64(n) {
				r, err := age.Decrypt(bytes.NewReader(ct), ids...)
				for err == nil {
					_, err = r.Read(buf)
				}
				if err != io.EOF {
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		fmt.Fprintln(os.Stderr, "decrypt failed")
		return 1
	}
	return 0
}

// rawRate is the baseline of a timed command: a process of its own (this
// test binary, see rawDecryptMain) that decrypts ct n times with plain
// age.Decrypt on GOMAXPROCS goroutines, timed as the command is (start,
// key parsing and all), the better of two runs. Its rate is the ceiling
// of the layer's age work on these cores.
func rawRate(b *testing.B, n int, ct []byte, identityFile string) float64 {
	b.Helper()
	file := filepath.Join(b.TempDir(), "sample.age")
	if err := os.WriteFile(file, ct, 0o600); err != nil {
		b.Fatal(err)
	}
	best := 0.0
	for range 2 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s:%s", rawDecryptEnv, n, file, identityFile))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("baseline process: %v\n%s", err, stderr.String())
		}
		best = max(best, float64(n)/time.Since(start).Seconds())
	}
	return best
}
