//! A dead letter can be re-driven: `dead_letter::redrive` puts it back on
//! its original subject; the group that gave up runs it again, a group that
//! had handled it acks the copy as a duplicate.

use hookline_tests::processor as support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use hookline_processor::Outcome;
use hookline_processor::dead_letter::{HEADER_REDRIVEN_FROM, redrive};
use hookline_tests::publish::{TestWebhook, publish};
use support::{Action, Env, Scripted, processor, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_dead_letter_runs_again_in_the_group_that_gave_up() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let fixed = std::sync::Arc::new(AtomicBool::new(false));
    let billing = {
        let fixed = fixed.clone();
        Scripted::new(move |_| {
            if fixed.load(Ordering::SeqCst) {
                Action::Return(Outcome::Success)
            } else {
                Action::Return(Outcome::permanent("missing price"))
            }
        })
    };
    let audit = Scripted::succeeding();
    let a = spawn(&env, env.config(processor("billing")), billing.clone()).await?;
    let b = spawn(&env, env.config(processor("audit")), audit.clone()).await?;
    let first = publish(
        &env.js,
        &TestWebhook::new("stripe", "invoice.paid", "evt_r", "{}"),
    )
    .await?;

    let letters = env.dead_letters(1, Duration::from_secs(10)).await?;
    env.wait_settled("billing", Duration::from_secs(10)).await?;
    env.wait_settled("audit", Duration::from_secs(10)).await?;

    fixed.store(true, Ordering::SeqCst); // the bug is fixed; re-drive
    let ack = redrive(&env.js, &env.stream.dlq_name, letters[0].sequence).await?;
    assert!(!ack.duplicate);
    assert_ne!(ack.sequence, first.sequence);
    let copy = env.original(ack.sequence).await?;
    assert_eq!(copy.subject.as_str(), "webhooks.stripe.invoice_paid");
    assert_eq!(copy.payload, env.original(first.sequence).await?.payload);
    assert_eq!(
        copy.headers
            .get(NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .as_deref(),
        Some("stripe:evt_r:redrive:1")
    );
    assert_eq!(
        copy.headers
            .get(HEADER_REDRIVEN_FROM)
            .map(|v| v.to_string())
            .as_deref(),
        Some("WEBHOOKS_DLQ:1")
    );
    // Re-driving the same dead letter again right away is deduped by the stream.
    assert!(
        redrive(&env.js, &env.stream.dlq_name, letters[0].sequence)
            .await?
            .duplicate
    );

    env.wait_settled("billing", Duration::from_secs(10)).await?;
    env.wait_settled("audit", Duration::from_secs(10)).await?;
    assert_eq!(
        billing.calls().len(),
        2,
        "failed once, then handled after the re-drive"
    );
    assert_eq!(
        audit.calls().len(),
        1,
        "audit had handled it: the copy is a duplicate there"
    );
    assert!(
        redrive(&env.js, &env.stream.name, first.sequence)
            .await
            .is_err(),
        "only dlq.* messages can be re-driven"
    );
    a.stop().await?;
    b.stop().await
}
