//! Permanent failures, undecodable messages and exhausted retries end in
//! WEBHOOKS_DLQ: original payload bytes, `<group>:<Nats-Msg-Id>`, the
//! Hookline-Dlq-* headers; the original is terminated.

use hookline_tests::processor as support;

use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::message::StreamMessage;
use hookline_platform::contract::{
    HEADER_DLQ_ATTEMPTS, HEADER_DLQ_GROUP, HEADER_DLQ_REASON, HEADER_DLQ_STREAM_SEQ, HEADER_EVENT,
    HEADER_SOURCE, WebhookKey,
};
use hookline_processor::Outcome;
use hookline_tests::publish::{TestWebhook, publish, publish_raw};
use support::{Action, Env, Scripted, processor, spawn};

fn header<'a>(message: &'a StreamMessage, name: &str) -> &'a str {
    message.headers.get(name).map_or("", |value| value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_dead_lettered_at_once() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|_| Action::Return(Outcome::permanent("unknown customer cus_9")));
    let running = spawn(&env, env.config(processor("billing")), handler.clone()).await?;
    let mut webhook = TestWebhook::new("stripe", "invoice.paid", "evt_1", r#"{"id":"evt_1"}"#);
    webhook.headers = vec![("stripe-account".into(), "acct_1".into())];
    let ack = publish(&env.js, &webhook).await?;

    let letters = env.dead_letters(1, Duration::from_secs(10)).await?;
    let letter = &letters[0];
    let original = env.original(ack.sequence).await?;
    assert_eq!(letter.subject.as_str(), "dlq.billing.stripe.invoice_paid");
    assert_eq!(
        letter.payload, original.payload,
        "payload is the original Envelope, byte for byte"
    );
    assert_eq!(
        header(letter, NATS_MESSAGE_ID.as_ref()),
        "billing:stripe:evt_1"
    );
    assert_eq!(
        header(letter, HEADER_DLQ_REASON),
        "permanent failure: unknown customer cus_9"
    );
    assert_eq!(header(letter, HEADER_DLQ_ATTEMPTS), "1");
    assert_eq!(header(letter, HEADER_DLQ_GROUP), "billing");
    assert_eq!(
        header(letter, HEADER_DLQ_STREAM_SEQ),
        ack.sequence.to_string()
    );
    assert_eq!(header(letter, HEADER_SOURCE), "stripe");
    assert_eq!(header(letter, HEADER_EVENT), "invoice.paid");

    env.wait_settled("billing", Duration::from_secs(10)).await?;
    assert_eq!(handler.calls().len(), 1, "terminated, never redelivered");
    // The record is gone, so a later provider retry or a re-drive starts fresh.
    let kv = env.js.get_key_value("hookline_idempotency").await?;
    assert_eq!(
        kv.get(WebhookKey::new("stripe", "evt_1")?.record_key("billing"))
            .await?,
        None
    );
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_handler_is_dead_lettered_after_exactly_max_deliver_attempts()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    let handler = Scripted::new(|_| Action::Return(Outcome::retry("connection refused")));
    let mut config = processor("ledger");
    config.max_deliver = 4;
    config.backoff.initial = Duration::from_millis(50);
    config.backoff.max = Duration::from_millis(200);
    let running = spawn(&env, env.config(config), handler.clone()).await?;
    let ack = publish(&env.js, &TestWebhook::new("github", "push", "h1:d1", "{}")).await?;

    let letters = env.dead_letters(1, Duration::from_secs(15)).await?;
    env.wait_settled("ledger", Duration::from_secs(10)).await?;
    let attempts: Vec<u32> = handler.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4], "exactly max_deliver handler runs");
    let letter = &letters[0];
    assert_eq!(letter.subject.as_str(), "dlq.ledger.github.push");
    assert_eq!(header(letter, HEADER_DLQ_ATTEMPTS), "4");
    assert_eq!(
        header(letter, HEADER_DLQ_REASON),
        "attempt 4 of 4 failed: connection refused"
    );
    assert_eq!(
        header(letter, HEADER_DLQ_STREAM_SEQ),
        ack.sequence.to_string()
    );
    assert_eq!(
        header(letter, NATS_MESSAGE_ID.as_ref()),
        "ledger:github:h1:d1"
    );
    assert_eq!(letter.payload, env.original(ack.sequence).await?.payload);
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dead_lettered_without_running_the_handler() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let handler = Scripted::succeeding();
    let running = spawn(&env, env.config(processor("audit")), handler.clone()).await?;
    let garbage = b"\x07 this is not a protobuf Envelope".to_vec();
    let ack = publish_raw(
        &env.js,
        "webhooks.shopify.orders_create",
        "shopify:o-1",
        garbage.clone(),
    )
    .await?;
    // A good one after it still flows.
    publish(
        &env.js,
        &TestWebhook::new("shopify", "orders/create", "o-2", "{}"),
    )
    .await?;

    let letters = env.dead_letters(1, Duration::from_secs(10)).await?;
    let letter = &letters[0];
    assert_eq!(letter.subject.as_str(), "dlq.audit.shopify.orders_create");
    assert_eq!(letter.payload.as_ref(), garbage.as_slice());
    assert!(
        header(letter, HEADER_DLQ_REASON).starts_with("undecodable envelope"),
        "{:?}",
        letter.headers
    );
    assert_eq!(
        header(letter, HEADER_DLQ_STREAM_SEQ),
        ack.sequence.to_string()
    );
    assert_eq!(
        header(letter, NATS_MESSAGE_ID.as_ref()),
        "audit:shopify:o-1"
    );

    env.wait_settled("audit", Duration::from_secs(10)).await?;
    let ids: Vec<String> = handler.calls().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["o-2"]);
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_dead_letter_the_same_webhook_separately() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let failing = Scripted::new(|_| Action::Return(Outcome::permanent("nope")));
    let a = spawn(&env, env.config(processor("group-a")), failing.clone()).await?;
    let b = spawn(&env, env.config(processor("group-b")), failing.clone()).await?;
    publish(
        &env.js,
        &TestWebhook::new("slack", "event_callback", "Ev1", "{}"),
    )
    .await?;

    let letters = env.dead_letters(2, Duration::from_secs(10)).await?;
    let mut ids: Vec<String> = letters
        .iter()
        .map(|l| header(l, NATS_MESSAGE_ID.as_ref()).to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["group-a:slack:Ev1", "group-b:slack:Ev1"]);
    a.stop().await?;
    b.stop().await
}
