package simulation

import (
	"strconv"
	"strings"
)

// sqlOut is one statement and the tables it touches.
type sqlOut struct {
	text  string
	refs  []tableRef // tables read
	views []tableRef // views read
	dest  tableRef   // table written, created, altered or dropped
}

// writer writes SQL against one project's tables.
type writer struct {
	r *rng
	p *project
}

// readable picks a table to read: a base table, or with some chance a view.
func (w writer) readable() catalogTable {
	for {
		t := pick(w.r, w.p.tables)
		if !t.view || w.r.chance(0.3) {
			return t
		}
	}
}

// writable picks a base table outside the raw landing dataset.
func (w writer) writable() catalogTable {
	for {
		t := pick(w.r, w.p.tables)
		if !t.view && t.ref.dataset != "raw" {
			return t
		}
	}
}

// underlying is the base table a view reads.
func (w writer) underlying(view catalogTable) tableRef {
	return tableRef{w.p.id, "core", view.def.name}
}

// read records that the statement reads t.
func (out *sqlOut) read(w writer, t catalogTable) {
	if t.view {
		out.views = append(out.views, t.ref)
		out.refs = append(out.refs, w.underlying(t))
		return
	}
	out.refs = append(out.refs, t.ref)
}

func (w writer) days() string { return strconv.Itoa(pick(w.r, []int{1, 7, 14, 28, 30, 90, 365})) }

// statement writes one statement of the given type.
func (w writer) statement(statement string, pr *principal) sqlOut {
	switch statement {
	case "SELECT":
		if pr.role == roleBI {
			return w.biSelect()
		}
		return w.selectSQL()
	case "INSERT":
		return w.insert()
	case "MERGE":
		return w.merge()
	case "UPDATE":
		return w.update()
	case "DELETE":
		return w.delete()
	case "CREATE_TABLE_AS_SELECT":
		return w.ctas()
	case "CREATE_VIEW":
		return w.createView()
	}
	return w.ddl(statement)
}

func (w writer) selectSQL() sqlOut {
	switch w.r.intn(6) {
	case 0:
		return w.aggregate()
	case 1:
		return w.join()
	case 2:
		return w.latestPerKey()
	case 3:
		return w.lookup()
	case 4:
		if w.r.chance(0.5) {
			return w.public()
		}
	}
	return w.aggregate()
}

func (w writer) aggregate() sqlOut {
	t := w.readable()
	d := t.def
	var out sqlOut
	out.read(w, t)
	grain := pick(w.r, []string{"DAY", "WEEK", "MONTH"})
	out.text = "SELECT\n  " + d.dim + ",\n  DATE_TRUNC(DATE(" + d.ts + "), " + grain + ") AS " + strings.ToLower(grain) +
		",\n  COUNT(*) AS n,\n  SUM(" + d.num + ") AS total_" + d.num + "\nFROM " + sqlName(t.ref) +
		"\nWHERE DATE(" + d.ts + ") >= DATE_SUB(CURRENT_DATE(), INTERVAL " + w.days() + " DAY)" +
		"\nGROUP BY 1, 2\nORDER BY 2 DESC, 3 DESC"
	return out
}

func (w writer) join() sqlOut {
	a, b := w.readable(), w.readable()
	var out sqlOut
	out.read(w, a)
	if b.ref != a.ref {
		out.read(w, b)
	}
	out.text = "SELECT\n  a." + a.def.dim + ",\n  COUNT(DISTINCT a." + a.def.id + ") AS " + a.def.id + "s,\n  ROUND(AVG(b." + b.def.num +
		"), 2) AS avg_" + b.def.num + "\nFROM " + sqlName(a.ref) + " AS a\nJOIN " + sqlName(b.ref) + " AS b\n  ON a." + a.def.fk +
		" = b." + b.def.id + "\nWHERE a." + a.def.ts + " >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL " + w.days() +
		" DAY)\nGROUP BY 1\nHAVING COUNT(*) > " + strconv.Itoa(w.r.between(1, 100)) + "\nORDER BY 2 DESC\nLIMIT " +
		strconv.Itoa(pick(w.r, []int{100, 500, 1000, 5000}))
	return out
}

func (w writer) latestPerKey() sqlOut {
	t := w.readable()
	d := t.def
	var out sqlOut
	out.read(w, t)
	out.text = "WITH ranked AS (\n  SELECT\n    *,\n    ROW_NUMBER() OVER (PARTITION BY " + d.fk + " ORDER BY " + d.ts +
		" DESC) AS rn\n  FROM " + sqlName(t.ref) + "\n  WHERE " + d.ts + " > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL " +
		strconv.Itoa(w.r.between(1, 72)) + " HOUR)\n)\nSELECT * EXCEPT (rn)\nFROM ranked\nWHERE rn = 1"
	return out
}

func (w writer) lookup() sqlOut {
	t := w.readable()
	var out sqlOut
	out.read(w, t)
	out.text = "SELECT *\nFROM " + sqlName(t.ref) + "\nWHERE " + t.def.id + " = " + strconv.Itoa(w.r.between(1000, 99999999)) + "\nLIMIT 100"
	if w.r.chance(0.4) {
		out.text = "select * from " + sqlName(t.ref) + " limit 1000"
	}
	return out
}

var publicQueries = map[string]string{
	"wikipedia":             "SELECT title, SUM(num_characters) AS chars\nFROM `bigquery-public-data.samples.wikipedia`\nWHERE wp_namespace = 0\nGROUP BY title\nORDER BY chars DESC\nLIMIT 100",
	"311_service_requests":  "SELECT complaint_description, COUNT(*) AS n\nFROM `bigquery-public-data.austin_311.311_service_requests`\nGROUP BY 1\nORDER BY n DESC\nLIMIT 20",
	"top_terms":             "-- This query shows a list of the daily top Google Search terms.\nSELECT\n   refresh_date AS Day,\n   term AS Top_Term,\n   rank\nFROM `bigquery-public-data.google_trends.top_terms`\nWHERE rank = 1\nGROUP BY Day, Top_Term, rank\nORDER BY Day DESC",
	"posts_questions":       "SELECT tag, COUNT(*) AS questions\nFROM `bigquery-public-data.stackoverflow.posts_questions`,\n  UNNEST(SPLIT(tags, '|')) AS tag\nWHERE creation_date >= '2023-01-01'\nGROUP BY tag\nORDER BY questions DESC\nLIMIT 50",
	"tlc_yellow_trips_2022": "SELECT EXTRACT(HOUR FROM pickup_datetime) AS hour, AVG(fare_amount) AS avg_fare\nFROM `bigquery-public-data.new_york_taxi_trips.tlc_yellow_trips_2022`\nGROUP BY hour\nORDER BY hour",
	"usa_1910_current":      "SELECT name, SUM(number) AS total\nFROM `bigquery-public-data.usa_names.usa_1910_current`\nWHERE gender = 'F'\nGROUP BY name\nORDER BY total DESC\nLIMIT 10",
}

func (w writer) public() sqlOut {
	t := pick(w.r, publicTables)
	return sqlOut{text: publicQueries[t.table], refs: []tableRef{t}}
}

// biSelect is a query as a BI tool generates it, with its context comment.
func (w writer) biSelect() sqlOut {
	t := w.readable()
	d := t.def
	var out sqlOut
	out.read(w, t)
	alias := t.ref.table
	out.text = "-- Looker Query Context '{\"user_id\":" + strconv.Itoa(w.r.between(1, 400)) + ",\"history_slug\":\"" + w.r.hex(32) +
		"\",\"instance_slug\":\"" + w.r.hex(32) + "\"}'\nSELECT\n    " + alias + "." + d.dim + "  AS " + alias + "_" + d.dim +
		",\n    COALESCE(SUM(" + alias + "." + d.num + " ), 0) AS " + alias + "_total_" + d.num + "\nFROM " + sqlName(t.ref) +
		" AS " + alias + "\nWHERE ((( " + alias + "." + d.ts + " ) >= ((TIMESTAMP_ADD(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), DAY, 'UTC'), INTERVAL -" +
		w.days() + " DAY))) AND ( " + alias + "." + d.ts + " ) < ((TIMESTAMP_ADD(TIMESTAMP_ADD(TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), DAY, 'UTC'), INTERVAL -" +
		"29 DAY), INTERVAL 30 DAY)))))\nGROUP BY\n    1\nORDER BY\n    2 DESC\nLIMIT 500"
	return out
}

func (w writer) insert() sqlOut {
	src, dst := w.readable(), w.writable()
	var out sqlOut
	out.read(w, src)
	out.dest = dst.ref
	cols := strings.Join(dst.def.columns(), ", ")
	out.text = "INSERT INTO " + sqlName(dst.ref) + " (" + cols + ")\nSELECT " + cols + "\nFROM " + sqlName(src.ref) +
		"\nWHERE DATE(" + src.def.ts + ") = DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY)"
	return out
}

func (w writer) merge() sqlOut {
	src, dst := w.readable(), w.writable()
	var out sqlOut
	out.read(w, src)
	out.refs = append(out.refs, dst.ref)
	out.dest = dst.ref
	d := dst.def
	out.text = "MERGE " + sqlName(dst.ref) + " AS T\nUSING (\n  SELECT * FROM " + sqlName(src.ref) + "\n  WHERE " + src.def.ts +
		" >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)\n) AS S\nON T." + d.id + " = S." + d.id +
		"\nWHEN MATCHED THEN\n  UPDATE SET " + d.dim + " = S." + d.dim + ", " + d.num + " = S." + d.num + ", " + d.ts + " = S." + d.ts +
		"\nWHEN NOT MATCHED THEN\n  INSERT ROW"
	return out
}

func (w writer) update() sqlOut {
	t := w.writable()
	d := t.def
	out := sqlOut{refs: []tableRef{t.ref}, dest: t.ref}
	out.text = "UPDATE " + sqlName(t.ref) + "\nSET " + d.dim + " = UPPER(TRIM(" + d.dim + "))\nWHERE " + d.ts +
		" >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL " + w.days() + " DAY)\n  AND " + d.dim + " != UPPER(TRIM(" + d.dim + "))"
	return out
}

func (w writer) delete() sqlOut {
	t := w.writable()
	out := sqlOut{refs: []tableRef{t.ref}, dest: t.ref}
	out.text = "DELETE FROM " + sqlName(t.ref) + "\nWHERE DATE(" + t.def.ts + ") < DATE_SUB(CURRENT_DATE(), INTERVAL " +
		pick(w.r, []string{"90", "180", "365", "730"}) + " DAY)"
	return out
}

func (w writer) ctas() sqlOut {
	src := w.readable()
	d := src.def
	dst := tableRef{w.p.id, pick(w.r, []string{"marts", "reporting", "sandbox"}), "agg_" + d.name + "_" + strings.ToLower(pick(w.r, []string{"daily", "weekly", "by_" + d.dim}))}
	var out sqlOut
	out.read(w, src)
	out.dest = dst
	out.text = "CREATE OR REPLACE TABLE " + sqlName(dst) + "\nPARTITION BY day\nCLUSTER BY " + d.dim + " AS\nSELECT\n  DATE(" + d.ts +
		") AS day,\n  " + d.dim + ",\n  COUNT(*) AS n,\n  SUM(" + d.num + ") AS " + d.num + "\nFROM " + sqlName(src.ref) + "\nGROUP BY 1, 2"
	return out
}

func (w writer) createView() sqlOut {
	src := w.writable()
	d := src.def
	view := tableRef{w.p.id, "reporting", "v_" + d.name}
	out := sqlOut{dest: view}
	out.text = "CREATE OR REPLACE VIEW " + sqlName(view) + " AS\nSELECT " + strings.Join(d.columns(), ", ") + "\nFROM " +
		sqlName(src.ref) + "\nWHERE " + d.ts + " IS NOT NULL"
	return out
}

// ddl writes the statements that change metadata and read no data.
func (w writer) ddl(statement string) sqlOut {
	t := w.writable()
	d := t.def
	switch statement {
	case "CREATE_TABLE":
		ref := tableRef{t.ref.project, t.ref.dataset, d.name + "_" + pick(w.r, []string{"v2", "backfill", "tmp", "history"})}
		return sqlOut{dest: ref, text: "CREATE TABLE IF NOT EXISTS " + sqlName(ref) + " (\n  " + d.id + " INT64 NOT NULL,\n  " +
			d.fk + " INT64,\n  " + d.ts + " TIMESTAMP,\n  " + d.dim + " STRING,\n  " + d.num + " NUMERIC\n)\nPARTITION BY DATE(" + d.ts + ")"}
	case "DROP_TABLE":
		ref := tableRef{t.ref.project, t.ref.dataset, d.name + "_tmp_" + w.r.hex(6)}
		return sqlOut{dest: ref, text: "DROP TABLE IF EXISTS " + sqlName(ref)}
	case "ALTER_TABLE":
		return sqlOut{dest: t.ref, text: "ALTER TABLE " + sqlName(t.ref) + "\nADD COLUMN IF NOT EXISTS " +
			pick(w.r, []string{"source_system", "ingested_at", "is_deleted", "region"}) + " STRING"}
	case "TRUNCATE_TABLE":
		return sqlOut{dest: t.ref, text: "TRUNCATE TABLE " + sqlName(t.ref)}
	}
	return sqlOut{text: "CREATE SCHEMA IF NOT EXISTS `" + w.p.id + "." + pick(w.r, []string{"sandbox", "scratch", "tmp_backfill"}) +
		"`\nOPTIONS (location = '" + w.p.location + "')"}
}

// longSelect is a generated query longer than maxV2Query: a dashboard's
// segment mapping written out as a CASE over thousands of codes.
func (w writer) longSelect(size int) sqlOut {
	t := w.readable()
	d := t.def
	var out sqlOut
	out.read(w, t)
	var b strings.Builder
	b.Grow(size + 512)
	b.WriteString("-- generated segment mapping\nSELECT\n  CASE\n")
	prefix := strings.ToUpper(d.dim[:2]) + "-"
	for i := 0; b.Len() < size-256; i++ {
		b.WriteString("    WHEN " + d.dim + " = '" + prefix + strconv.Itoa(100000+i) + "' THEN 'segment_" + strconv.Itoa(w.r.intn(400)) + "'\n")
	}
	b.WriteString("    ELSE 'other'\n  END AS segment,\n  COUNT(*) AS n,\n  SUM(" + d.num + ") AS total\nFROM " + sqlName(t.ref) + "\nGROUP BY 1\nORDER BY 3 DESC")
	out.text = b.String()
	return out
}

// script joins its children's statements into one multi-statement query.
func script(dataset string, children []sqlOut) string {
	var b strings.Builder
	b.WriteString("-- refresh of " + dataset + "\nDECLARE run_date DATE DEFAULT DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY);\n\nBEGIN\n")
	for _, c := range children {
		b.WriteString("  " + strings.ReplaceAll(c.text, "\n", "\n  ") + ";\n\n")
	}
	b.WriteString("END;")
	return b.String()
}
