//! The group's durable pull consumer and the pull stream read from it.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;
use hookline_platform::contract::REPLAY_SUBJECT_PREFIX;

use crate::Error;
use crate::config::{ProcessorConfig, Start};

/// How long one pull request waits on the server before it is renewed.
/// Short, because the renewal is also when the client's count of messages
/// still owed by the server is corrected: async-nats 0.51 can count a
/// request's messages twice when they arrive before its own bookkeeping of
/// the request (seen with a pull batch of 1 under load), and then asks for
/// nothing more until the request expires. With 30 s that was a 30 s stall
/// of a quiet instance; now it is at most 5 s.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// Idle heartbeat of a pull request: a silent server is noticed within ~2×.
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);

/// The consumer configuration of a group: starts as `start` says (default
/// [`Start::New`]), durable, explicit ack, `ack_wait`,
/// server `MaxDeliver` = `max_deliver + 1`, the filter subjects plus the
/// group's own replay subjects (`replay.<group>.>`, see
/// [`replay_subject`](hookline_platform::contract::replay_subject)), and **no**
/// server-side `BackOff` (delays are computed client-side and sent as nak
/// delays, see the crate docs).
pub fn consumer_config(config: &ProcessorConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(config.group.clone()),
        description: Some(format!("Hookline processor group {}", config.group)),
        deliver_policy: config.start.unwrap_or(Start::New).deliver_policy(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_deliver: config.server_max_deliver(),
        filter_subjects: filter_subjects(config),
        max_ack_pending: i64::try_from(config.max_ack_pending).unwrap_or(i64::MAX),
        backoff: Vec::new(),
        ..Default::default()
    }
}

/// `subjects` and `replay.<group>.>`.
fn filter_subjects(config: &ProcessorConfig) -> Vec<String> {
    let mut subjects = config.subjects.clone();
    subjects.push(format!("{REPLAY_SUBJECT_PREFIX}.{}.>", config.group));
    subjects
}

/// Creates the group's consumer, or updates it to `config` (every instance
/// of a group does this at start; identical configs make it a no-op).
///
/// Where a group starts is fixed when it is created: an existing group
/// keeps its start, and a `start` set explicitly to something else is
/// refused ([`Error::StartChanged`]) rather than ignored.
pub(crate) async fn ensure(
    stream: &Stream,
    config: &ProcessorConfig,
) -> Result<PullConsumer, Error> {
    let stream_name = || stream.cached_info().config.name.clone();
    let mut wanted = consumer_config(config);
    match stream.consumer_info(&config.group).await {
        Ok(existing) => {
            let existing = existing.config.deliver_policy;
            if let Some(start) = config.start
                && start.deliver_policy() != existing
            {
                return Err(Error::StartChanged {
                    group: config.group.clone(),
                    wanted: start,
                    existing: Start::from_deliver_policy(existing)
                        .map_or_else(|| format!("{existing:?}"), |s| s.to_string()),
                });
            }
            wanted.deliver_policy = existing;
        }
        Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::ConsumerInfo {
                group: config.group.clone(),
                stream: stream_name(),
                source,
            });
        }
    }
    stream
        .create_consumer(wanted)
        .await
        .map_err(|source| Error::Consumer {
            group: config.group.clone(),
            stream: stream_name(),
            source,
        })
}

/// A pull stream asking for about `concurrency` messages at a time, so that
/// few messages wait client-side while their `ack_wait` runs.
pub(crate) async fn messages(
    consumer: &PullConsumer,
    concurrency: usize,
) -> Result<pull::Stream, async_nats::jetstream::consumer::StreamError> {
    consumer
        .stream()
        .max_messages_per_batch(concurrency)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
}
