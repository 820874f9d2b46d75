//! Property tests for ingest's parsers of untrusted and operator input:
//! the provider id → `Nats-Msg-Id` mapping (attacker-influenced: ids come
//! from headers and bodies), and the whole ingest config from random TOML
//! plus random environment overrides.

use std::collections::HashSet;

use hookline_ingest::config::IngestSettings;
use hookline_ingest::envelope::{MAX_READABLE_ID, content_id, dedup_id};
use hookline_platform::config;
use proptest::prelude::*;

fn provider_id() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "1:",
        "abc-def",
        "\r\n",
        "Nats-Msg-Id: x",
        " ",
        "\t",
        "\0",
        "é",
        "😀",
        ":",
        "evt_1",
        "\u{7f}",
    ]);
    prop_oneof![
        any::<String>(),
        "[!-~]{0,260}",
        prop::collection::vec(fragment, 0..60).prop_map(|p| p.concat()),
    ]
}

fn source_name() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,64}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn dedup_id_is_always_a_valid_bounded_header_value(source in source_name(), id in provider_id()) {
        let value = dedup_id(&source, &id);
        // A NATS header value must not contain CR or LF (async-nats panics
        // on them in `From<&str>`); ours is printable ASCII throughout.
        prop_assert!(value.parse::<async_nats::HeaderValue>().is_ok(), "{value:?}");
        prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()), "{value:?}");
        prop_assert!(
            value.len() <= source.len() + 1 + MAX_READABLE_ID.max("sha256:".len() + 64),
            "{} bytes", value.len()
        );
        let readable = value
            .strip_prefix(&source)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(|| TestCaseError::fail("no source prefix"))?;
        // Readable ids are kept verbatim so operators can search for them.
        if !id.is_empty() && id.len() <= MAX_READABLE_ID && id.bytes().all(|b| b.is_ascii_graphic()) {
            prop_assert_eq!(readable, id.as_str());
        } else {
            prop_assert!(readable.starts_with("sha256:") && readable.len() == 71, "{readable}");
        }
        prop_assert_eq!(dedup_id(&source, &id), value, "not deterministic");
    }

    #[test]
    fn distinct_unreadable_ids_stay_distinct(source in source_name(), ids in prop::collection::hash_set(provider_id(), 2..20)) {
        let mapped: HashSet<String> = ids.iter().map(|id| dedup_id(&source, id)).collect();
        // Hashing must not merge two different deliveries, except a readable
        // id that literally spells another id's hash (not a realistic input).
        prop_assert_eq!(mapped.len(), ids.len());
    }

    #[test]
    fn content_ids_are_valid_ids(source in source_name(), body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let id = content_id(&source, &body);
        prop_assert_eq!(dedup_id(&source, &id), format!("{source}:{id}"));
    }
}

/// Lines from the ingest config's vocabulary with random values.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "listen",
        "metrics_listen",
        "max_body",
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
