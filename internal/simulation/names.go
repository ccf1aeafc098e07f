package simulation

import "strings"

// The vocabulary the organization is built from. Names follow the shapes
// real organizations use; people and companies are fictional, and email
// domains are under example.com.

var orgNames = []string{
	"acme", "globex", "initech", "umbrella", "hooli", "vandelay", "soylent",
	"tyrell", "wonka", "monarch", "stark", "gekko", "massive", "nakatomi",
}

var envNames = newWeighted(weight[string]{"prod", 5}, weight[string]{"dev", 3},
	weight[string]{"staging", 2}, weight[string]{"sandbox", 1})

// locations are where projects keep their data, with how common each is.
var locations = newWeighted(
	weight[string]{"US", 45}, weight[string]{"EU", 25}, weight[string]{"us-central1", 15},
	weight[string]{"europe-west2", 10}, weight[string]{"asia-northeast1", 5},
)

var reservationNames = []string{"etl", "bi-dashboards", "adhoc", "ml-training", "default", "batch-pipelines", "finance-critical", "data-science"}

var firstNames = []string{
	"maria", "james", "aiko", "lars", "fatima", "chen", "olivia", "mateo", "priya", "noah",
	"ingrid", "kwame", "sofia", "liam", "yuki", "amara", "lucas", "elena", "omar", "hannah",
	"ravi", "zoe", "diego", "mei", "felix", "nadia", "samuel", "leila", "tomas", "grace",
}

var lastNames = []string{
	"garcia", "smith", "tanaka", "nilsson", "haddad", "wang", "brown", "rossi", "sharma", "muller",
	"dubois", "mensah", "silva", "kowalski", "kim", "okafor", "jensen", "novak", "cohen", "martin",
	"patel", "lopez", "schmidt", "ito", "costa", "ahmed", "young", "berg", "moreau", "singh",
}

// tableDef is a table kind with the columns SQL is written against, in the
// order id, foreign key, time, dimension, measure, then the others.
type tableDef struct {
	name                 string
	id, fk, ts, dim, num string
	others               []string
}

func table(name, columns string) tableDef {
	c := strings.Fields(columns)
	return tableDef{name: name, id: c[0], fk: c[1], ts: c[2], dim: c[3], num: c[4], others: c[5:]}
}

// columns returns every column of the table.
func (t *tableDef) columns() []string {
	return append([]string{t.id, t.fk, t.ts, t.dim, t.num}, t.others...)
}

// domainDef is a line of business: project ids are named after it and its
// tables hold its data.
type domainDef struct {
	name   string
	tables []tableDef
}

var domains = []domainDef{
	{"sales", []tableDef{
		table("orders", "order_id customer_id created_at status total_amount currency channel"),
		table("order_items", "order_item_id order_id created_at product_category unit_price quantity sku"),
		table("customers", "customer_id account_manager_id created_at segment lifetime_value country email_hash"),
		table("refunds", "refund_id order_id refunded_at reason amount"),
	}},
	{"marketing", []tableDef{
		table("campaigns", "campaign_id owner_id started_at channel budget status objective"),
		table("ad_spend", "spend_id campaign_id spend_date network cost_micros impressions clicks"),
		table("touchpoints", "touchpoint_id user_id occurred_at medium conversion_value source campaign"),
	}},
	{"finance", []tableDef{
		table("gl_entries", "entry_id account_id posted_at cost_center amount currency ledger"),
		table("invoices", "invoice_id customer_id issued_at status total due_date"),
		table("payments", "payment_id invoice_id paid_at method amount processor"),
	}},
	{"logistics", []tableDef{
		table("shipments", "shipment_id order_id shipped_at carrier weight_kg destination_country service_level"),
		table("inventory_snapshots", "snapshot_id warehouse_id snapshot_at sku on_hand reserved"),
		table("delivery_events", "event_id shipment_id event_time event_type delay_minutes hub"),
	}},
	{"product", []tableDef{
		table("app_events", "event_id user_id event_ts event_name duration_ms platform app_version session_id"),
		table("sessions", "session_id user_id started_at device duration_s country"),
		table("experiments", "assignment_id user_id assigned_at variant exposure_count experiment"),
	}},
	{"ml-platform", []tableDef{
		table("features_daily", "feature_row_id entity_id feature_ts feature_set value"),
		table("training_examples", "example_id entity_id label_ts split label weight"),
		table("predictions", "prediction_id entity_id predicted_at model_version score threshold"),
	}},
	{"payments", []tableDef{
		table("transactions", "txn_id merchant_id authorized_at status amount currency card_network"),
		table("chargebacks", "chargeback_id txn_id opened_at reason_code amount"),
		table("fraud_scores", "score_id txn_id scored_at model score"),
	}},
	{"support", []tableDef{
		table("tickets", "ticket_id customer_id opened_at priority first_response_minutes status channel"),
		table("csat", "survey_id ticket_id answered_at agent_team score comment_length"),
	}},
	{"iot", []tableDef{
		table("device_readings", "reading_id device_id read_at metric value firmware"),
		table("alerts", "alert_id device_id raised_at severity duration_s rule"),
	}},
	{"search", []tableDef{
		table("queries", "query_id user_id searched_at locale result_count query_hash"),
		table("clicks", "click_id query_id clicked_at position dwell_ms url_hash"),
	}},
	{"dwh", []tableDef{
		table("orders", "order_id customer_id created_at status total_amount currency"),
		table("customers", "customer_id region_id created_at segment lifetime_value country"),
		table("daily_kpis", "kpi_id metric_id kpi_date business_unit value target"),
	}},
	{"analytics", []tableDef{
		table("page_views", "view_id user_id viewed_at page_type time_on_page_ms referrer"),
		table("conversions", "conversion_id user_id converted_at funnel_step revenue channel"),
	}},
}

// layers are the datasets of a project, with the prefix their tables get.
var layers = []struct{ dataset, prefix string }{
	{"raw", ""}, {"staging", "stg_"}, {"core", ""}, {"marts", "fct_"}, {"reporting", "agg_daily_"},
}

// Public datasets that queries sometimes read.
var publicTables = []tableRef{
	{"bigquery-public-data", "samples", "wikipedia"},
	{"bigquery-public-data", "austin_311", "311_service_requests"},
	{"bigquery-public-data", "google_trends", "top_terms"},
	{"bigquery-public-data", "stackoverflow", "posts_questions"},
	{"bigquery-public-data", "new_york_taxi_trips", "tlc_yellow_trips_2022"},
	{"bigquery-public-data", "usa_names", "usa_1910_current"},
}

// Clients that submit jobs, each with its job id shape, API method and
// user agents.
type clientKind int

const (
	clientConsole   clientKind = iota
	clientBQ                   // the bq command-line tool
	clientPython               // google-cloud-bigquery (dbt, notebooks)
	clientAirflow              // Airflow's BigQuery operators
	clientODBC                 // BI tools over ODBC/JDBC, through jobs.query
	clientLoader               // a managed ingestion service
	clientScheduled            // BigQuery scheduled queries
)

var userAgents = map[clientKind][]string{
	clientConsole: {
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36,gzip(gfe),gzip(gfe)",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36,gzip(gfe),gzip(gfe)",
		"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0,gzip(gfe),gzip(gfe)",
	},
	clientBQ: {
		"google-cloud-sdk466.0.0 (gzip),gzip(gfe)",
		"google-cloud-sdk478.0.0 google-api-python-client command/bq.query.jobs,gzip(gfe)",
	},
	clientPython: {
		"gl-python/3.11.8 grpc/1.62.1 gax/2.17.1 gapic/3.19.0 gccl/3.19.0,gzip(gfe)",
		"gl-python/3.10.12 grpc/1.60.0 gax/2.15.0 gapic/3.17.2 gccl/3.17.2,gzip(gfe)",
	},
	clientAirflow: {
		"airflow/2.8.1 gl-python/3.11.7 grpc/1.60.0 gax/2.15.0 gapic/3.17.2 gccl/3.17.2,gzip(gfe)",
	},
	clientODBC: {
		"SimbaJDBCDriverforGoogleBigQuery/1.5.4.1008 (GPN:Looker),gzip(gfe)",
		"MicrosoftODBCDriverforGoogleBigQuery/2.4 (GPN:Simba;),gzip(gfe)",
	},
	clientLoader: {
		"google-api-java-client/2.2.0 Google-API-Java-Client/2.2.0 Google-HTTP-Java-Client/1.43.3 (gzip),gzip(gfe)",
	},
	clientScheduled: {
		"google-api-go-client/0.5 BigQueryDataTransfer,gzip(gfe)",
	},
}

// bqOAuthClient is the OAuth client the Cloud SDK signs bq requests with.
const bqOAuthClient = "32555940559.apps.googleusercontent.com"
