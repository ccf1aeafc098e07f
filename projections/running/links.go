package running

import "net/http"

// Links are the places outside the product the page links to; an empty
// one is left out.
type Links struct {
	// HistoryReport is a Looker Studio report of the job history in
	// BigQuery.
	HistoryReport string `json:"history_report,omitempty"`
	// HistoryDataset is the BigQuery dataset of the job history, as
	// project.dataset.
	HistoryDataset string `json:"history_dataset,omitempty"`
}

func (p *Projection) serveLinks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, p.cfg.Links)
}
