// Package retention enforces the statutory retention of visitor data: it
// derives purge plans from a Policy and the clock, runs purges that delete
// expired visits, close forgotten ones and crypto-shred the per-day epoch
// keys of expired days, keeps epoch keys ready for the days ahead, and
// writes the purge report a data-protection officer files.
//
// A Purger refuses to purge when the clock looks wrong (earlier than the
// last purge, or implausibly far beyond it), because a clock that jumped
// forward would delete data the health office may still need. Such a
// refusal is an ECONFLICT error for which IsClockRefusal reports true.
//
// The clock is always injected (Purger.Now); nothing in this package reads
// time.Now except as the default of that field.
package retention
