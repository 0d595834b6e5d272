package registry

import (
	"time"
	_ "time/tzdata" // German time on hosts without a zone database
)

// LocalZone is the time zone of the sites' opening hours and of every time
// shown to people: German time, whatever the host's zone.
var LocalZone = loadLocalZone()

func loadLocalZone() *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic("registry: Europe/Berlin missing from the embedded zone database: " + err.Error())
	}
	return loc
}
