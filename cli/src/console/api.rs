//! `/api/`: the typed reports as JSON. Errors are `{"error": "…"}` with
//! 400 (usage), 404 (not found) or 502 (NATS trouble).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Console;
use super::actions::{self, DeadLetterQuery};
use crate::error::Error;
use crate::report::{LetterSummary, OverviewReport};
use crate::webhooks::{self, ListQuery};
use crate::when::parse_time;

/// An error as the API answers it.
pub fn error_response(error: &Error) -> Response {
    let status = match error.exit_code() {
        2 => StatusCode::BAD_REQUEST,
        3 => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_GATEWAY,
    };
    (
        status,
        Json(serde_json::json!({ "error": error.one_line() })),
    )
        .into_response()
}

fn answer<T: Serialize>(result: crate::Result<T>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => error_response(&e),
    }
}

/// The overview: `hookline status` plus webhooks received per source.
///
/// # Errors
/// As the status and counts queries.
pub async fn overview(console: &Console) -> crate::Result<OverviewReport> {
    let (status, sources) = tokio::try_join!(
        crate::status::collect(&console.settings, &console.js),
        webhooks::counts_per_source(&console.settings, &console.js),
    )?;
    Ok(OverviewReport { status, sources })
}

/// `GET /api/status`.
pub async fn status(State(console): State<Arc<Console>>) -> Response {
    answer(overview(&console).await)
}

/// The webhook list's query string.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WebhookListParams {
    /// Source.
    #[serde(default)]
    pub source: Option<String>,
    /// Event.
    #[serde(default)]
    pub event: Option<String>,
    /// Text in the id.
    #[serde(default)]
    pub id: Option<String>,
    /// RFC 3339 or an age.
    #[serde(default)]
    pub since: Option<String>,
    /// RFC 3339 or an age.
    #[serde(default)]
    pub until: Option<String>,
    /// Cursor (the previous page's `next`).
    #[serde(default)]
    pub before: Option<u64>,
    /// Rows (default 50, at most 200).
    #[serde(default)]
    pub limit: Option<usize>,
}

impl WebhookListParams {
    /// The query it asks for.
    ///
    /// # Errors
    /// A bad time (2).
    pub fn query(&self) -> crate::Result<ListQuery> {
        let now = std::time::SystemTime::now();
        let text = |v: &Option<String>| {
            v.as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Ok(ListQuery {
            source: text(&self.source),
            event: text(&self.event),
            id_contains: text(&self.id),
            since: text(&self.since)
                .map(|t| parse_time("since", &t, now))
                .transpose()?,
            until: text(&self.until)
                .map(|t| parse_time("until", &t, now))
                .transpose()?,
            before: self.before,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// `GET /api/webhooks?source=&event=&id=&since=&until=&before=&limit=`.
pub async fn webhooks(
    State(console): State<Arc<Console>>,
    Query(params): Query<WebhookListParams>,
) -> Response {
    let page = async {
        let query = params.query()?;
        webhooks::list(&console.settings, &console.js, &query).await
    };
    answer(page.await)
}

/// `GET /api/webhooks/{source}/{id}`.
pub async fn webhook(
    State(console): State<Arc<Console>>,
    Path((source, id)): Path<(String, String)>,
) -> Response {
    answer(actions::webhook(&console, &source, &id).await)
}

/// The body of `POST /api/webhooks/{source}/{id}/replay`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplayRequest {
    /// The group that receives the copy.
    pub group: String,
}

/// `POST /api/webhooks/{source}/{id}/replay` with `{"group": "…"}`.
pub async fn replay_webhook(
    State(console): State<Arc<Console>>,
    Path((source, id)): Path<(String, String)>,
    Json(request): Json<ReplayRequest>,
) -> Response {
    answer(actions::replay_webhook(&console, &source, &id, &request.group).await)
}

/// `GET /api/dlq?group=&source=&event=&since=&until=&seq=&limit=`.
pub async fn dead_letters(
    State(console): State<Arc<Console>>,
    Query(query): Query<DeadLetterQuery>,
) -> Response {
    let letters = actions::dead_letters(&console, &query).await;
    answer(letters.map(|l| {
        l.iter()
            .map(crate::dlq::Letter::summary)
            .collect::<Vec<LetterSummary>>()
    }))
}

/// `POST /api/dlq/replay` with a selection (`{"seq": "3,4"}`, filters, or `{"all": "yes"}`).
pub async fn redrive(
    State(console): State<Arc<Console>>,
    Json(query): Json<DeadLetterQuery>,
) -> Response {
    let (done, result) = actions::redrive(&console, &query).await;
    match result {
        Ok(()) => Json(done).into_response(),
        Err(e) => {
            let mut response = error_response(&e);
            if !done.is_empty() {
                response = (
                    response.status(),
                    Json(serde_json::json!({ "error": e.one_line(), "done": done })),
                )
                    .into_response();
            }
            response
        }
    }
}

/// `POST /api/dlq/purge` with a selection; answers `{"purged": n}`.
pub async fn purge(
    State(console): State<Arc<Console>>,
    Json(query): Json<DeadLetterQuery>,
) -> Response {
    answer(
        actions::purge(&console, &query)
            .await
            .map(|purged| serde_json::json!({ "purged": purged })),
    )
}
