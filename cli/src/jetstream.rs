//! Reading JetStream state: streams, a group's consumer, subject matching.

use async_nats::jetstream::{self, consumer, stream::Stream};
use futures::TryStreamExt as _;

use crate::error::{Error, Result};

/// Opens stream `name`.
///
/// # Errors
/// It does not exist (exit 3), or the server did not answer (exit 1).
pub async fn open_stream(js: &jetstream::Context, name: &str) -> Result<Stream> {
    js.get_stream(name).await.map_err(|e| match e.kind() {
        jetstream::context::GetStreamErrorKind::JetStream(inner)
            if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
        {
            Error::NotFound(format!(
                "stream {name} does not exist (hookline-ingest creates it when it starts, or run `hookline streams apply`)"
            ))
        }
        _ => Error::caused(format!("cannot read stream {name}"), e),
    })
}

/// The durable consumers (processor groups and downstream teams) of a stream.
///
/// # Errors
/// The server did not answer.
pub async fn durable_consumers(stream: &Stream) -> Result<Vec<consumer::Info>> {
    let mut consumers: Vec<consumer::Info> = stream
        .consumers()
        .try_collect()
        .await
        .map_err(|e| Error::caused("cannot list consumers", e))?;
    consumers.retain(|c| c.config.durable_name.is_some());
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(consumers)
}

/// The filter subjects of a consumer (one or several).
pub fn filters(info: &consumer::Info) -> Vec<String> {
    if info.config.filter_subjects.is_empty() {
        if info.config.filter_subject.is_empty() {
            vec![">".to_owned()]
        } else {
            vec![info.config.filter_subject.clone()]
        }
    } else {
        info.config.filter_subjects.clone()
    }
}

/// Whether NATS subject `filter` (with `*` and `>`) matches `subject`.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut filter_tokens = filter.split('.');
    let mut subject_tokens = subject.split('.');
    loop {
        match (filter_tokens.next(), subject_tokens.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(f), Some(s)) if f == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches("webhooks.>", "webhooks.github.push"));
        assert!(subject_matches("webhooks.*.push", "webhooks.github.push"));
        assert!(!subject_matches(
            "webhooks.stripe.>",
            "webhooks.github.push"
        ));
        assert!(!subject_matches("webhooks.>", "webhooks"));
        assert!(subject_matches(
            "webhooks.github.push",
            "webhooks.github.push"
        ));
        assert!(!subject_matches("webhooks.github", "webhooks.github.push"));
    }
}
