//! The throw-away `nats-server` of one benchmark part: the test harness's
//! (a free loopback port, its own store directory, killed and removed on
//! drop), with room for the benchmark's streams and optionally
//! `sync_interval: always`.

use hookline_tests::NatsServer;

/// JetStream durability setting of the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sync {
    /// nats-server's default: fsync every 2 min, ack before fsync.
    Default,
    /// `jetstream { sync_interval: always }`: fsync before every ack.
    Always,
}

impl Sync {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Always => "always",
        }
    }
}

/// Starts a JetStream server for one part and waits until it takes clients.
/// The streams are declared with a 24 GiB cap, so the store allows 32 GB.
pub(crate) async fn start(sync: Sync) -> anyhow::Result<NatsServer> {
    let jetstream = match sync {
        Sync::Default => "max_memory_store: 256MB, max_file_store: 32GB",
        Sync::Always => "max_memory_store: 256MB, max_file_store: 32GB, sync_interval: always",
    };
    NatsServer::start_with(jetstream, "").await
}
