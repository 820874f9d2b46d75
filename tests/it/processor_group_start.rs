//! Where a new group starts (`[processor] start`): by default a group
//! added to a live pipeline handles webhooks stored after it was created,
//! not the history it never owned; `start = "all"` or a time reach back;
//! an existing group keeps its start, and an explicit, different `start`
//! for it is refused with a message that says what to do instead.

use hookline_tests::processor as support;

use std::time::{Duration, SystemTime};

use hookline_processor::{Outcome, Start};
use hookline_tests::eventually;
use hookline_tests::publish::{TestWebhook, publish};
use support::{Env, Scripted, processor, spawn};

/// Publishes `ids` as Stripe webhooks.
async fn publish_ids(env: &Env, ids: &[&str]) -> anyhow::Result<()> {
    for id in ids {
        publish(
            &env.js,
            &TestWebhook::new("stripe", "invoice.paid", id, "{}"),
        )
        .await?;
    }
    Ok(())
}

/// Starts `group` with `start`, waits until its consumer exists, publishes
/// `later`, and returns the ids the handler ran once the group settled.
async fn ids_handled(
    env: &Env,
    group: &str,
    start: Option<Start>,
    later: &[&str],
) -> anyhow::Result<Vec<String>> {
    let handler = Scripted::new(|_| support::Action::Return(Outcome::Success));
    let mut config = processor(group);
    config.start = start;
    let running = spawn(env, env.config(config), handler.clone()).await?;
    eventually(Duration::from_secs(10), "the group's consumer", || async {
        Ok(env.consumer_info(group).await.is_ok())
    })
    .await?;
    publish_ids(env, later).await?;
    eventually(
        Duration::from_secs(10),
        "the later webhooks handled",
        || {
            let handler = handler.clone();
            async move { Ok(later.iter().all(|id| !handler.calls_for(id).is_empty())) }
        },
    )
    .await?;
    env.wait_settled(group, Duration::from_secs(10)).await?;
    running.stop().await?;
    let mut ids: Vec<String> = handler.calls().into_iter().map(|c| c.id).collect();
    ids.sort();
    Ok(ids)
}

#[tokio::test]
async fn a_new_group_starts_with_webhooks_stored_after_it_was_created() -> anyhow::Result<()> {
    let env = Env::start().await?;
    publish_ids(&env, &["old-1", "old-2"]).await?;
    let handled = ids_handled(&env, "billing", None, &["new-1"]).await?;
    assert_eq!(
        handled,
        ["new-1"],
        "the history before the group is not its work"
    );
    Ok(())
}

#[tokio::test]
async fn start_all_and_start_at_a_time_reach_back_into_the_stream() -> anyhow::Result<()> {
    let env = Env::start().await?;
    publish_ids(&env, &["old-1"]).await?;
    tokio::time::sleep(Duration::from_millis(200)).await; // the two stores apart in time
    let between = SystemTime::now();
    publish_ids(&env, &["old-2"]).await?;

    let all = ids_handled(&env, "audit", Some(Start::All), &["new-1"]).await?;
    assert_eq!(all, ["new-1", "old-1", "old-2"]);
    let since = ids_handled(&env, "recent", Some(Start::Since(between)), &["new-2"]).await?;
    assert_eq!(
        since,
        ["new-1", "new-2", "old-2"],
        "from the time on, not before"
    );
    Ok(())
}

#[tokio::test]
async fn an_existing_group_keeps_its_start_and_refuses_a_different_one() -> anyhow::Result<()> {
    let env = Env::start().await?;
    ids_handled(&env, "billing", None, &["first"]).await?;
    publish_ids(&env, &["while-stopped"]).await?;

    // A different start, set explicitly: refused before anything runs.
    let mut config = processor("billing");
    config.start = Some(Start::All);
    let handler = Scripted::succeeding();
    let refused = hookline_processor::run(
        env.connect().await?,
        env.config(config),
        handler.clone(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("group billing already exists and started at \"new\"")
            && message.contains("hookline replay --group billing"),
        "{message}"
    );
    assert!(handler.calls().is_empty());

    // Unset: the group goes on where it was, the stopped time included.
    let handled = ids_handled(&env, "billing", None, &["after"]).await?;
    assert_eq!(handled, ["after", "while-stopped"]);
    Ok(())
}
