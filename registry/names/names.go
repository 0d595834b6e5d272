// Package names refuses names that people would mistake for one another:
// a new approver's or staff member's name that looks like one already
// registered ("Anna Schmidt" and "Аnna Schmidt" with a Cyrillic А,
// "Bert" and "Вегт", "rn" and "m"). It compares UTS #39 skeletons
// (Unicode's confusables.txt, through go.mau.fi/util/confusable, a
// maintained implementation) of the case-folded names; registry's
// CheckScripts refuses a word that mixes writing systems on its own.
package names

import (
	"strings"

	"go.mau.fi/util/confusable"

	"github.com/cityhall/registry/registry"
)

// Confusable reports whether a and b look alike: equal, or equal
// skeletons of their case-folded forms.
func Confusable(a, b string) bool {
	fa, fb := fold(a), fold(b)
	return fa == fb || confusable.Skeleton(fa) == confusable.Skeleton(fb)
}

// fold lower-cases s and collapses its white space.
func fold(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// CheckUnlike returns EINVALID (naming field) when name mixes writing
// systems in a word, or looks like one of existing, which the message
// names with its scripts made visible.
func CheckUnlike(field, name string, existing []string) error {
	if err := registry.CheckScripts(field, name); err != nil {
		return err
	}
	for _, e := range existing {
		if Confusable(name, e) {
			return registry.FieldError(field, "%s looks like %q, which is registered already: choose a name nobody can mistake for it.",
				field, registry.ShowScripts(e))
		}
	}
	return nil
}
