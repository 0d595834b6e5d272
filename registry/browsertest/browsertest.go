// Package browsertest drives pages in a real headless Chromium (Debian's
// chromium, which scripts/test-deps installs; a missing browser fails the
// test, it never skips) for the browser tests of the desk, the visitors'
// pages and the health office's workspace: keyboard and clicks, waits for
// new pages, checks every screen with axe-core and for sideways
// scrolling, and with REGISTRY_SCREENSHOTS=DIR saves the screenshots.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Screen sizes: a desk PC and a phone.
const (
	DeskW, DeskH   = 1280, 900
	PhoneW, PhoneH = 390, 844
)

// chromium returns the browser's path, failing the test without one.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: install Debian's chromium (scripts/test-deps does) to run the browser tests")
	return ""
}

// Browser is one browser process with its own profile directory (so its
// cookies outlive a restart, as on a phone).
type Browser struct {
	t       testing.TB
	Profile string
	Ctx     context.Context // the first tab; the browser lives as long as it
	Stop    func()
}

// Start starts Chromium on profile ("" for a new one); downloads go to
// the profile's Downloads directory.
func Start(t testing.TB, profile string) *Browser {
	t.Helper()
	if profile == "" {
		profile = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(profile), chromedp.Flag("lang", "de-DE"), chromedp.Flag("accept-lang", "de-DE,de"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, Profile: profile, Ctx: ctx}
	// Cancel closes the browser gracefully (Browser.close), so that it
	// writes its cookies to the profile as a phone does when it shuts down.
	b.Stop = sync.OnceFunc(func() { chromedp.Cancel(ctx); cancel(); cancelAlloc() })
	t.Cleanup(b.Stop)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// Tab opens a new tab of the browser; closing it is the returned func.
func (b *Browser) Tab() (context.Context, func()) {
	ctx, cancel := chromedp.NewContext(b.Ctx)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab: %v", err)
	}
	return ctx, cancel
}

// Do runs steps in ctx, failing the test with what on error.
func Do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Act runs action, which loads a new page (a submit, a click on a
// button, Enter in a form), waits until the new page replaced the old
// one, and then runs the steps.
func Act(t testing.TB, ctx context.Context, what string, action chromedp.Action[chromedp.Void], steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	Eval[bool](t, ctx, "document.documentElement.dataset.stale = 'yes', true")
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, action); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for {
		// Evaluating fails while the old page unloads; try again.
		fresh, err := chromedp.Run(tctx, chromedp.Evaluate[bool]("document.documentElement.dataset.stale === undefined && document.readyState === 'complete'"))
		if err == nil && fresh {
			break
		} else if tctx.Err() != nil {
			t.Fatalf("%s: no new page: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the browser, not waiting for time to pass
	}
	Do(t, ctx, what, steps...)
}

// Eval evaluates a JavaScript expression.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// BodyText is the page's visible text.
func BodyText(t testing.TB, ctx context.Context) string {
	t.Helper()
	return Eval[string](t, ctx, "document.body.innerText")
}

// WantText fails unless the page shows every text.
func WantText(t testing.TB, ctx context.Context, texts ...string) {
	t.Helper()
	page := BodyText(t, ctx)
	for _, want := range texts {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
}

// Screen checks the page at its current size: it fits the width (no
// sideways scrolling), axe-core finds no violation, and it renders; with
// REGISTRY_SCREENSHOTS it is saved there as name.png. It returns the PNG.
func Screen(t testing.TB, ctx context.Context, name string) []byte {
	t.Helper()
	violations, err := Axe(ctx)
	if err != nil {
		t.Fatalf("%s: axe-core: %v", name, err)
	}
	for _, v := range violations {
		t.Errorf("%s: axe-core: %s", name, v)
	}
	if over := Eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth + 1"); over {
		t.Errorf("%s: the page is wider than the screen (%d px)", name, Eval[int](t, ctx, "window.innerWidth"))
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 1000 {
		t.Fatalf("%s: screenshot: %v (%d bytes)", name, err, len(png))
	}
	if dir := os.Getenv("REGISTRY_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return png
}

// Focused is the id of the element that has the keyboard focus.
func Focused(t testing.TB, ctx context.Context) string {
	t.Helper()
	return Eval[string](t, ctx, "document.activeElement ? document.activeElement.id : ''")
}

// Fill types values into the inputs with the ids (keys), each cleared
// first.
func Fill(t testing.TB, ctx context.Context, values map[string]string, order ...string) {
	t.Helper()
	for _, id := range order {
		Do(t, ctx, "fill "+id, chromedp.Clear(chromedp.CSS("#"+id)), chromedp.SendKeys(chromedp.CSS("#"+id), values[id]))
	}
}
