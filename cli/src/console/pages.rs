//! The console's pages: server-rendered HTML (maud escapes every value it
//! inserts, so webhook ids, events, headers and bodies always show as text),
//! no script, one stylesheet. Forms post with the CSRF token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Console;
use super::actions::{self, DeadLetterQuery};
use super::api::{WebhookListParams, overview as overview_report};
use super::guard::{COOKIE, same, session_value};
use crate::error::Error;
use crate::report::{EnvelopeReport, OverviewReport, WebhookPage, WebhookReport};
use crate::table;

const STYLESHEET: &str = include_str!("console.css");

/// `GET /assets/console.css`.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// A notice shown above a page (after an action).
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    /// The text.
    #[serde(default)]
    pub notice: Option<String>,
}

fn page(title: &str, refresh: Option<u32>, notice: Option<&str>, body: &Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · Hookline" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Hookline" }
                    nav {
                        a href="/" { "Overview" }
                        a href="/webhooks" { "Webhooks" }
                        a href="/dlq" { "Dead letters" }
                    }
                    form.search method="get" action="/webhooks" {
                        input type="search" name="id" placeholder="Find a webhook by id" aria-label="webhook id";
                        button type="submit" { "Find" }
                    }
                }
                main {
                    @if let Some(notice) = notice {
                        p.notice role="status" { (notice) }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

fn failure(error: &Error) -> Response {
    let status = match error.exit_code() {
        2 => StatusCode::BAD_REQUEST,
        3 => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_GATEWAY,
    };
    let body = html! { p.error { (error.one_line()) } p { a href="/" { "Back to the overview" } } };
    let mut response = page("Cannot show this", None, None, &body);
    *response.status_mut() = status;
    response
}

fn state_class(state: &str) -> &'static str {
    match state {
        "handled" | "acknowledged" => "ok",
        "retrying" | "running" | "in flight" | "pending" => "busy",
        "dead-lettered" => "bad",
        _ => "muted",
    }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn webhook_href(source: &str, id: &str) -> String {
    format!("/webhooks/{}/{}", segment(source), segment(id))
}

/// `GET /`.
pub async fn overview(
    State(console): State<Arc<Console>>,
    Query(notice): Query<Notice>,
) -> Response {
    match overview_report(&console).await {
        Ok(report) => page(
            "Overview",
            Some(10),
            notice.notice.as_deref(),
            &overview_body(&report),
        ),
        Err(e) => failure(&e),
    }
}

fn overview_body(report: &OverviewReport) -> Markup {
    let status = &report.status;
    html! {
        p.meta { "NATS " (status.nats.url) " · server " (status.nats.server) " " (status.nats.version)
            " · cluster: " span class=(if status.cluster.health == "healthy" || status.cluster.health.starts_with("single") { "ok" } else { "bad" }) { (status.cluster.health) }
            " · refreshes every 10 s" }
        section {
            h2 { "Received per source" }
            @if report.sources.is_empty() {
                p.muted { "Nothing received yet. Send one: " code { "hookline send github" } }
            } @else {
                table id="sources" {
                    thead { tr { th { "Source" } th.n { "5 min" } th.n { "1 hour" } th.n { "24 hours" } } }
                    tbody { @for s in &report.sources {
                        tr { td { a href={ "/webhooks?source=" (segment(&s.source)) } { (s.source) } }
                             td.n { (s.last_5m) } td.n { (s.last_1h) } td.n { (s.last_24h) } }
                    } }
                }
            }
        }
        section {
            h2 { "Processor groups" }
            @if status.groups.is_empty() {
                p.muted { "No groups yet: start a processor." }
            } @else {
                table id="groups" {
                    thead { tr { th { "Group" } th.n { "Pending" } th.n { "In flight" } th.n { "Redelivering" } th.n { "Dead-lettered" } th { "Subjects" } } }
                    tbody { @for g in &status.groups {
                        tr {
                            td { (g.group) }
                            @if let Some(c) = &g.consumer {
                                td.n { (c.pending) } td.n { (c.ack_pending) } td.n { (c.redelivered) }
                            } @else {
                                td.n.muted { "-" } td.n.muted { "-" } td.n.muted { "-" }
                            }
                            td.n { @if g.dead_letters > 0 { a.bad href={ "/dlq?group=" (segment(&g.group)) } { (g.dead_letters) } } @else { "0" } }
                            td.muted { (g.consumer.as_ref().map(|c| c.filters.join(" ")).unwrap_or_else(|| "(no consumer)".to_owned())) }
                        }
                    } }
                }
            }
        }
        section {
            h2 { "Streams" }
            table id="streams" {
                thead { tr { th { "Stream" } th.n { "Messages" } th.n { "Size" } th { "Kept for" } th.n { "Size limit" } th.n { "Replicas" } th { "Last stored" } } }
                tbody { @for s in &status.streams {
                    tr { td { (s.name) } td.n { (s.messages) } td.n { (table::bytes(s.bytes)) } td { (s.max_age) }
                         td.n { @if s.max_bytes < 0 { "none" } @else { (table::bytes(s.max_bytes.unsigned_abs())) } }
                         td.n { (s.replicas) } td { (s.last_time) } }
                } }
            }
            p.meta { "Idempotency bucket " (status.idempotency.bucket) ": "
                @match status.idempotency.records { Some(n) => { (n) " records, kept " (status.idempotency.ttl.as_deref().unwrap_or("-")) }, None => { "not created yet" } } }
            @if !status.cluster.peers.is_empty() {
                p.meta { "Leader " (status.cluster.leader.as_deref().unwrap_or("none")) "; replicas: "
                    @for p in &status.cluster.peers { span class=(if p.state() == "current" { "ok" } else { "bad" }) { (p.name) " (" (p.state()) ") " } } }
            }
        }
    }
}

/// `GET /webhooks`.
pub async fn webhooks(
    State(console): State<Arc<Console>>,
    Query(params): Query<WebhookListParams>,
) -> Response {
    let page_result = async {
        let query = params.query()?;
        crate::webhooks::list(&console.settings, &console.js, &query).await
    };
    match page_result.await {
        Ok(list) => page("Webhooks", None, None, &webhooks_body(&params, &list)),
        Err(e) => failure(&e),
    }
}

fn webhooks_body(params: &WebhookListParams, list: &WebhookPage) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut older = params.clone();
    older.before = list.next;
    let older_query = serde_urlencoded_pairs(&older);
    html! {
        form.filters method="get" action="/webhooks" {
            label { "Source " input name="source" value=(value(&params.source)); }
            label { "Event " input name="event" value=(value(&params.event)); }
            label { "Id contains " input name="id" value=(value(&params.id)); }
            label { "Since " input name="since" placeholder="2h or RFC 3339" value=(value(&params.since)); }
            label { "Until " input name="until" value=(value(&params.until)); }
            button type="submit" { "Filter" }
        }
        @if list.rows.is_empty() {
            p.muted { "No webhooks match in stream sequences " (list.scanned_from) "–" (list.scanned_to) "." }
        } @else {
            table id="webhooks" {
                thead { tr { th.n { "Seq" } th { "Stored" } th { "Source" } th { "Event" } th { "Id" } th { "What" } th { "State per group" } } }
                tbody { @for row in &list.rows {
                    tr {
                        td.n { (row.seq) }
                        td.time { (row.stored_at) }
                        td { (row.source) }
                        td { (row.event) }
                        td.id { @match &row.webhook_id {
                            Some(id) => { a href=(webhook_href(&row.source, id)) { (id) } },
                            None => { span.muted { (row.msg_id) } },
                        } }
                        td.muted { (row.kind) }
                        td { @for s in &row.states {
                            span class={ "badge " (state_class(s.state)) } title=(s.detail) { (s.group) ": " (s.state) }
                        } }
                    }
                } }
            }
        }
        p.meta { "Looked at stream sequences " (list.scanned_from) "–" (list.scanned_to) ". "
            @if list.next.is_some() { a id="older" href={ "/webhooks?" (older_query) } { "Older →" } } }
    }
}

fn serde_urlencoded_pairs(params: &WebhookListParams) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("source", &params.source),
        ("event", &params.event),
        ("id", &params.id),
        ("since", &params.since),
        ("until", &params.until),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            out.append_pair(name, value);
        }
    }
    if let Some(before) = params.before {
        out.append_pair("before", &before.to_string());
    }
    out.finish()
}

/// `GET /webhooks/{source}/{id}`.
pub async fn webhook(
    State(console): State<Arc<Console>>,
    Path((source, id)): Path<(String, String)>,
    Query(notice): Query<Notice>,
) -> Response {
    match actions::webhook(&console, &source, &id).await {
        Ok(report) => page(
            &format!("Webhook {id}"),
            None,
            notice.notice.as_deref(),
            &webhook_body(&console, &source, &id, &report),
        ),
        Err(e) => failure(&e),
    }
}

/// A body as shown: pretty JSON, text, or hex for binary.
pub fn body_text(envelope: &EnvelopeReport) -> (&'static str, String) {
    if envelope.body_base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&envelope.body)
            .unwrap_or_default();
        let hex: Vec<String> = bytes
            .chunks(16)
            .enumerate()
            .map(|(i, chunk)| {
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                format!("{:08x}  {}", i * 16, hex.join(" "))
            })
            .collect();
        return ("binary, as hex", hex.join("\n"));
    }
    match serde_json::from_str::<serde_json::Value>(&envelope.body) {
        Ok(json) => (
            "JSON",
            serde_json::to_string_pretty(&json).unwrap_or_else(|_| envelope.body.clone()),
        ),
        Err(_) => ("text", envelope.body.clone()),
    }
}

fn webhook_body(console: &Console, source: &str, id: &str, report: &WebhookReport) -> Markup {
    let trace = &report.trace;
    html! {
        dl.facts {
            dt { "Source" } dd { (source) }
            dt { "Event" } dd { (trace.event.as_deref().unwrap_or("-")) }
            dt { "Received at" } dd { (trace.received_at.as_deref().unwrap_or("-")) }
            dt { "Stream sequence" } dd { @for m in trace.messages.iter().take(1) { (m.stream_seq) } }
            dt { "Nats-Msg-Id" } dd { code { (trace.msg_id) } }
            dt { "Copies" } dd { (trace.messages.len().saturating_sub(1)) " (duplicates are dropped by the stream; re-drives and replays listed below)" }
        }
        section {
            h2 { "State per group" }
            table id="groups" {
                thead { tr { th { "Group" } th { "State" } th { "Detail" } } }
                tbody { @for g in &trace.groups {
                    tr { td { (g.group) } td { span class={ "badge " (state_class(g.state)) } { (g.state) } } td { (g.detail) } }
                } }
            }
            form.inline method="post" action={ (webhook_href(source, id)) "/replay" } {
                input type="hidden" name="csrf" value=(console.csrf);
                label { "Replay to group " select name="group" { @for g in &trace.groups { option value=(g.group) { (g.group) } } } }
                button type="submit" { "Replay" }
            }
        }
        section {
            h2 { "Messages in the stream" }
            table id="messages" {
                thead { tr { th.n { "Seq" } th { "Subject" } th { "Stored" } th { "What" } } }
                tbody { @for m in &trace.messages {
                    tr { td.n { (m.stream_seq) } td { (m.subject) } td.time { (m.stored_at) } td { (m.kind) } }
                } }
            }
        }
        @if let Some(envelope) = &report.envelope {
            section {
                h2 { "Headers" }
                table id="headers" { tbody { @for (name, value) in &envelope.headers {
                    tr { th { (name) } td { (value) } }
                } } }
                @let (kind, text) = body_text(envelope);
                h2 { "Body " span.muted { "(" (envelope.content_type) ", " (kind) ")" } }
                pre id="body" { (text) }
                h2 { "Send it again" }
                p.muted { "Signed by the CLI with the source's secret (never shown here):" }
                pre.command { (actions::curl_hint(source, envelope)) }
            }
        } @else {
            p.muted { "The stored message is not a webhook envelope." }
        }
    }
}

/// Reads a posted form: every `seq` joined, the other fields as given.
fn form_query(body: &Bytes) -> (DeadLetterQuery, Option<String>) {
    let mut query = DeadLetterQuery::default();
    let mut seqs = Vec::new();
    let mut confirm = None;
    for (name, value) in form_urlencoded::parse(body) {
        let value = value.into_owned();
        match name.as_ref() {
            "seq" => seqs.push(value),
            "group" => query.group = Some(value),
            "source" => query.source = Some(value),
            "event" => query.event = Some(value),
            "since" => query.since = Some(value),
            "until" => query.until = Some(value),
            "all" => query.all = Some(value),
            "confirm" => confirm = Some(value),
            _ => {}
        }
    }
    if !seqs.is_empty() {
        query.seq = Some(seqs.join(","));
    }
    (query, confirm)
}

fn dlq_href(query: &DeadLetterQuery, notice: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("group", &query.group),
        ("source", &query.source),
        ("event", &query.event),
        ("since", &query.since),
        ("until", &query.until),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            out.append_pair(name, value);
        }
    }
    out.append_pair("notice", notice);
    format!("/dlq?{}", out.finish())
}

/// `POST /webhooks/{source}/{id}/replay` (form: `group`).
pub async fn replay_webhook(
    State(console): State<Arc<Console>>,
    Path((source, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let group = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "group")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let notice = match actions::replay_webhook(&console, &source, &id, &group).await {
        Ok(done) => format!(
            "Replayed to {} as WEBHOOKS #{}",
            done.group, done.stream_seq
        ),
        Err(e) => format!("Not replayed: {}", e.one_line()),
    };
    let mut href = webhook_href(&source, &id);
    href.push('?');
    href.push_str(
        &form_urlencoded::Serializer::new(String::new())
            .append_pair("notice", &notice)
            .finish(),
    );
    Redirect::to(&href).into_response()
}

/// `GET /dlq`.
pub async fn dead_letters(
    State(console): State<Arc<Console>>,
    Query(query): Query<DeadLetterQuery>,
    Query(notice): Query<Notice>,
) -> Response {
    match actions::dead_letters(&console, &query).await {
        Ok(letters) => {
            let now = std::time::SystemTime::now();
            let value = |v: &Option<String>| v.clone().unwrap_or_default();
            let filters = html! {
                input type="hidden" name="group" value=(value(&query.group));
                input type="hidden" name="source" value=(value(&query.source));
                input type="hidden" name="event" value=(value(&query.event));
                input type="hidden" name="since" value=(value(&query.since));
                input type="hidden" name="until" value=(value(&query.until));
            };
            let body = html! {
                form.filters method="get" action="/dlq" {
                    label { "Group " input name="group" value=(value(&query.group)); }
                    label { "Source " input name="source" value=(value(&query.source)); }
                    label { "Event " input name="event" value=(value(&query.event)); }
                    label { "Since " input name="since" placeholder="2h or RFC 3339" value=(value(&query.since)); }
                    label { "Until " input name="until" value=(value(&query.until)); }
                    button type="submit" { "Filter" }
                }
                @if letters.is_empty() {
                    p.muted id="empty" { "No dead letters." }
                } @else {
                    form id="selection" method="post" action="/dlq/replay" {
                        input type="hidden" name="csrf" value=(console.csrf);
                        (filters)
                        table id="letters" {
                            thead { tr { th {} th.n { "Seq" } th { "Dead-lettered" } th.n { "Age" } th { "Group" } th { "Source" } th { "Event" } th { "Webhook" } th.n { "Attempts" } th { "Reason" } } }
                            tbody { @for letter in &letters {
                                tr {
                                    td { input type="checkbox" name="seq" value=(letter.seq) aria-label={ "select " (letter.seq) }; }
                                    td.n { (letter.seq) }
                                    td.time { (crate::when::rfc3339(letter.time)) }
                                    td.n { (crate::when::short_duration(now.duration_since(letter.time).unwrap_or_default())) }
                                    td { (letter.group) }
                                    td { (letter.source) }
                                    td { (letter.event) }
                                    td.id { @match &letter.webhook_id {
                                        Some(id) => { a href=(webhook_href(&letter.source, id)) { (id) } },
                                        None => { span.muted { "undecodable" } },
                                    } }
                                    td.n { (letter.attempts) }
                                    td.reason { (table::cut(&letter.reason, 200)) }
                                }
                            } }
                        }
                        button id="redrive-selected" type="submit" { "Re-drive selected" }
                    }
                    div.actions {
                        form.inline method="post" action="/dlq/replay" {
                            input type="hidden" name="csrf" value=(console.csrf);
                            (filters)
                            input type="hidden" name="all" value="yes";
                            button id="redrive-all" type="submit" { "Re-drive all " (letters.len()) " shown by this filter" }
                        }
                        form.inline method="post" action="/dlq/purge" {
                            input type="hidden" name="csrf" value=(console.csrf);
                            (filters)
                            input type="hidden" name="all" value="yes";
                            button.danger id="purge" type="submit" { "Purge all matching…" }
                        }
                    }
                }
            };
            page("Dead letters", None, notice.notice.as_deref(), &body)
        }
        Err(e) => failure(&e),
    }
}

/// `POST /dlq/replay` (form: `seq`…, filters, `all`).
pub async fn redrive(State(console): State<Arc<Console>>, body: Bytes) -> Response {
    let (query, _) = form_query(&body);
    let (done, result) = actions::redrive(&console, &query).await;
    let notice = match result {
        Ok(()) if done.is_empty() => "No dead letters to re-drive".to_owned(),
        Ok(()) => format!(
            "Re-drove {} dead letter(s): {}",
            done.len(),
            done.iter()
                .map(|d| format!("#{} → WEBHOOKS #{}", d.seq, d.stream_seq))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("Re-drove {}; then: {}", done.len(), e.one_line()),
    };
    let mut back = query;
    back.seq = None;
    Redirect::to(&dlq_href(&back, &notice)).into_response()
}

/// `POST /dlq/purge`: asks for confirmation, then deletes.
pub async fn purge(State(console): State<Arc<Console>>, body: Bytes) -> Response {
    let (query, confirm) = form_query(&body);
    if confirm.as_deref() != Some("yes") {
        let count = actions::dead_letters(&console, &query)
            .await
            .map(|l| l.len())
            .unwrap_or(0);
        let value = |v: &Option<String>| v.clone().unwrap_or_default();
        let body = html! {
            p.error { "Delete " (count) " dead letter(s) for good? They cannot be re-driven afterwards." }
            form.inline method="post" action="/dlq/purge" {
                input type="hidden" name="csrf" value=(console.csrf);
                input type="hidden" name="group" value=(value(&query.group));
                input type="hidden" name="source" value=(value(&query.source));
                input type="hidden" name="event" value=(value(&query.event));
                input type="hidden" name="since" value=(value(&query.since));
                input type="hidden" name="until" value=(value(&query.until));
                input type="hidden" name="all" value="yes";
                input type="hidden" name="confirm" value="yes";
                button.danger id="confirm-purge" type="submit" { "Delete them" }
            }
            p { a href="/dlq" { "Cancel" } }
        };
        return page("Purge dead letters?", None, None, &body);
    }
    let notice = match actions::purge(&console, &query).await {
        Ok(n) => format!("Purged {n} dead letter(s)"),
        Err(e) => format!("Not purged: {}", e.one_line()),
    };
    Redirect::to(&dlq_href(&query, &notice)).into_response()
}

/// `GET /login`.
pub async fn login_form() -> Response {
    let body = html! {
        form.login method="post" action="/login" {
            label { "Console token " input type="password" name="token" autocomplete="current-password" autofocus; }
            button type="submit" { "Sign in" }
        }
    };
    page("Sign in", None, None, &body)
}

/// `POST /login` (form: `token`): sets the session cookie.
pub async fn login(State(console): State<Arc<Console>>, body: Bytes) -> Response {
    let Some(token) = &console.token else {
        return Redirect::to("/").into_response();
    };
    let given = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !same(&given, token.expose()) {
        let mut response = login_form().await;
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        session_value(token.expose())
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_segments_encoded() {
        let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let markup = html! { td { (hostile) } }.into_string();
        assert!(!markup.contains("<script>"), "{markup}");
        assert!(!markup.contains("<img"), "{markup}");
        assert!(markup.contains("&lt;script&gt;"), "{markup}");
        assert_eq!(segment("a b/c:d"), "a%20b%2Fc%3Ad");
        let envelope = EnvelopeReport {
            id: "x".into(),
            source: "s".into(),
            event: "e".into(),
            received_at: None,
            content_type: "application/octet-stream".into(),
            scheme: String::new(),
            headers: Vec::new(),
            body: base64::engine::general_purpose::STANDARD.encode([0u8, 255]),
            body_base64: true,
        };
        assert_eq!(body_text(&envelope).1, "00000000  00 ff");
    }
}
