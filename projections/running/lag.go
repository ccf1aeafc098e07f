package running

import (
	"fmt"
	"math"
	"time"
)

// lagJSON is how far the list is behind the audit log, in the summary and
// in /readyz: Config.Behind at the moment of the answer, and whether that
// is more than Config.CatchingUpAfter.
type lagJSON struct {
	BehindSeconds   float64 `json:"behind_seconds"`
	CatchingUp      bool    `json:"catching_up"`
	CatchingUpAfter float64 `json:"catching_up_after_seconds"`
	// Message is "catching up, N s behind" while catching up.
	Message string `json:"message,omitempty"`
}

// CatchingUp reports whether the list is more than CatchingUpAfter behind
// the audit log (Config.Behind), as the summary and /readyz say: entries
// published meanwhile, completions and insertions among them, are not
// applied yet, so what the list says is open is not yet what is.
func (p *Projection) CatchingUp() bool { return p.lag(p.cfg.Now()).CatchingUp }

// lag is how far the list is behind at now.
func (p *Projection) lag(now time.Time) lagJSON {
	behind := max(p.cfg.Behind(now), 0)
	l := lagJSON{
		BehindSeconds:   math.Round(behind.Seconds()*1000) / 1000,
		CatchingUp:      behind > p.cfg.CatchingUpAfter,
		CatchingUpAfter: p.cfg.CatchingUpAfter.Seconds(),
	}
	if l.CatchingUp {
		l.Message = fmt.Sprintf("catching up, %d s behind", int(behind/time.Second))
	}
	return l
}
