package browsertest

// Axe runs axe-core (Deque Systems, MPL-2.0; axe.min.js of the npm
// package axe-core 4.14.1, vendored here with its licence so that the
// tests need no network) in a page under test and reports its violations
// of WCAG 2.0/2.1/2.2 A and AA and of axe's best practices.
//
// The script is evaluated through the DevTools protocol, which a page's
// Content-Security-Policy does not govern: the pages keep their strict
// policy while they are checked.

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

//go:embed axe.min.js
var script string

// Violation is one rule a page breaks, with the elements that break it.
type Violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
}

// Axe checks the page of ctx and returns its violations.
func Axe(ctx context.Context) ([]Violation, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		return nil, fmt.Errorf("load axe-core: %w", err)
	}
	return chromedp.Run(ctx, chromedp.Evaluate[[]Violation](`axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
  resultTypes: ['violations']
}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact || '', help: v.help,
  targets: v.nodes.map(n => n.target.join(' '))
})))`, chromedp.EvalAwaitPromise))
}
