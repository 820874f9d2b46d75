//! The `http` handler: POSTs each webhook to an internal URL.

use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::Error;
use crate::handler::{Handler, Outcome, Webhook};

/// Forwards each webhook: `POST <url>` with the original body, its content
/// type and the provider headers ingest kept, plus `Hookline-Id`,
/// `Hookline-Source`, `Hookline-Event`, `Hookline-Attempt` and
/// `Idempotency-Key` (`<source>:<id>`, stable across redeliveries).
///
/// A 2xx is success; 408, 429, 5xx, other non-4xx statuses, connection
/// errors and timeouts are retryable (honouring `Retry-After` in seconds or
/// as an HTTP date); any other 4xx is permanent. Redirects are not followed.
#[derive(Debug, Clone)]
pub struct HttpHandler {
    client: reqwest::Client,
    url: Url,
}

/// Request headers Hookline sets itself (or that belong to the connection):
/// a provider header of that name is not forwarded.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "idempotency-key",
];

impl HttpHandler {
    /// A handler posting to `url`, each request bounded by `timeout`.
    ///
    /// # Errors
    /// `url` is not an http(s) URL, or the client cannot be built.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, Error> {
        let url = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Error::InvalidConfig(format!("handler URL {url:?} is not an http(s) URL"))
            })?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookline-processor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self { client, url })
    }

    fn headers(webhook: &Webhook) -> HeaderMap {
        let envelope = &webhook.envelope;
        let mut headers = HeaderMap::new();
        for header in &envelope.headers {
            let name = header.name.to_ascii_lowercase();
            if RESERVED.contains(&name.as_str())
                || name.starts_with("hookline-")
                || name.starts_with("proxy-")
            {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&header.value),
            ) {
                headers.append(name, value);
            }
        }
        if let Ok(value) = HeaderValue::from_str(&envelope.content_type)
            && !envelope.content_type.is_empty()
        {
            headers.insert(CONTENT_TYPE, value);
        }
        let ours = [
            ("hookline-id", envelope.id.as_str()),
            ("hookline-source", envelope.source.as_str()),
            ("hookline-event", envelope.event.as_str()),
            ("idempotency-key", webhook.idempotency_key()),
        ];
        for (name, value) in ours {
            headers.insert(HeaderName::from_static(name), header_value(value));
        }
        headers.insert(
            HeaderName::from_static("hookline-attempt"),
            HeaderValue::from(webhook.delivery.attempt),
        );
        headers
    }
}

/// Header values must be visible ASCII (or obs-text); anything else is
/// percent-encoded so the value still identifies the webhook.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let encoded: String = text
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

impl Handler for HttpHandler {
    async fn handle(&self, webhook: &Webhook) -> Outcome {
        let request = self
            .client
            .post(self.url.clone())
            .headers(Self::headers(webhook))
            .body(webhook.envelope.body.clone());
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                classify(response.status(), retry_after)
            }
            Err(error) if error.is_builder() => {
                Outcome::permanent(format!("cannot build the request: {}", chain(error)))
            }
            Err(error) if error.is_timeout() => Outcome::retry("request timed out"),
            Err(error) => Outcome::retry(format!("request failed: {}", chain(error))),
        }
    }
}

/// The error and its causes on one line (each once), without the URL.
fn chain(error: reqwest::Error) -> String {
    hookline_platform::error::chain(&error.without_url())
}

/// Maps a response status to an outcome.
fn classify(status: StatusCode, retry_after: Option<Duration>) -> Outcome {
    if status.is_success() {
        return Outcome::Success;
    }
    let reason = format!("handler endpoint answered {status}");
    let retryable = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || !status.is_client_error();
    if retryable {
        Outcome::Retry {
            after: retry_after,
            reason,
        }
    } else {
        Outcome::Permanent { reason }
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (a date in
/// the past means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Outcome::Success);
        for status in [408, 429, 500, 502, 503, 302] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, None), Outcome::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 404, 409, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, None), Outcome::Permanent { .. }),
                "{status}"
            );
        }
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, after),
            Outcome::Retry {
                after,
                reason: "handler endpoint answered 503 Service Unavailable".into()
            }
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn odd_ids_still_make_header_values() {
        assert_eq!(header_value("stripe:evt_1"), "stripe:evt_1");
        assert_eq!(header_value("a\nb"), "a%0Ab");
    }
}
