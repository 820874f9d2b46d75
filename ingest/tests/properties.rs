//! Property tests for ingest's parsers of operator input: the whole ingest
//! config from random TOML plus random environment overrides. (The provider
//! id → `Nats-Msg-Id` rule is tested with `WebhookKey` in the platform.)

use hookline_ingest::config::IngestSettings;
use hookline_platform::config;
use proptest::prelude::*;

/// Lines from the ingest config's vocabulary with random values.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "listen",
        "metrics_listen",
        "max_body",
        "min_body_rate",
        "max_connections",
        "replay_guard",
        "publish_timeout",
        "header_timeout",
        "body_timeout",
        "retry_after",
        "name",
        "provider",
        "secrets",
        "tolerance",
        "header",
        "encoding",
        "prefix",
        "separator",
        "signed",
        "timestamp_header",
        "timestamp_json",
        "timestamp_unit",
        "id_header",
        "id_json",
        "event_header",
        "event_json",
        "reject_future",
        "url",
        "replicas",
        "duplicate_window",
        "nope",
    ]);
    let value = prop_oneof![
        Just("\"127.0.0.1:0\"".to_owned()),
        Just("\"10s\"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"1KiB\"".to_owned()),
        Just("0".to_owned()),
        Just("\"github\"".to_owned()),
        Just("\"hmac\"".to_owned()),
        Just("\"stripe\"".to_owned()),
        Just("\"hex\"".to_owned()),
        Just("\"{timestamp}.{body}\"".to_owned()),
        Just("\"{nope}\"".to_owned()),
        Just("[{ value = \"s\" }]".to_owned()),
        Just("[]".to_owned()),
        Just("[{ env = \"HOOKLINE_PROPTEST_SURELY_UNSET\" }]".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
    ];
    let section = prop::sample::select(vec![
        "[ingest]",
        "[[sources]]",
        "[stream]",
        "[nats]",
        "[processor]",
    ]);
    let line = prop_oneof![
        4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => section.prop_map(str::to_owned),
        1 => "[\\PC]{0,30}",
    ];
    prop::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ingest_config_never_panics(
        text in config_text(),
        env in prop::collection::vec(
            ("HOOKLINE_(INGEST|STREAM|NATS)_[A-Z_]{1,16}", any::<String>()),
            0..4,
        ),
    ) {
        let file = tempfile::NamedTempFile::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(file.path(), &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Ok(settings) = config::load::<IngestSettings>(Some(file.path()), env) {
            let _ = settings.validate();
            let _ = hookline_ingest::sources::Sources::build(&settings);
        }
    }
}
