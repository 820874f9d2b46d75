//! Property tests for the platform's parsers of untrusted or operator input:
//! the event-name → subject-token sanitiser (attacker-controlled), byte
//! sizes and durations, and configuration loading from random TOML files
//! and random `HOOKLINE_*` environment overrides. None may panic; the
//! sanitiser must always yield exactly one valid subject token, and any
//! provider id (attacker-influenced: ids come from headers and bodies) a
//! bounded `WebhookKey`.

use std::collections::HashSet;
use std::time::Duration;

use hookline_platform::config::{self, ByteSize};
use hookline_platform::contract::{
    HASHED_ID_PREFIX, MAX_MESSAGE_ID_LEN, MAX_READABLE_ID, MAX_RECORD_KEY_LEN, MAX_TOKEN_LEN,
    UNKNOWN_EVENT, WebhookKey, subject_token, webhook_subject,
};
use hookline_platform::nats::NatsConfig;
use hookline_platform::streams::StreamConfig;
use hookline_platform::telemetry::TelemetryConfig;
use proptest::prelude::*;
use serde::Deserialize;

/// Text that leans on what subjects and parsers find interesting.
fn hostile_text() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        ".",
        "*",
        ">",
        " ",
        "\t",
        "\r\n",
        "\0",
        "$JS.API.>",
        "..",
        "é",
        "\u{202e}",
        "\u{feff}",
        "a",
        "push",
        "invoice.paid",
        "_",
        "-",
        "/",
        "\u{7f}",
        "😀",
        "%2e",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(fragment, 0..80).prop_map(|parts| parts.concat()),
        "[\\PC]{0,400}",
    ]
}

/// A NATS subject token: non-empty printable ASCII without `.`, `*`, `>`.
fn is_one_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn subject_token_is_always_one_bounded_token(text in hostile_text()) {
        let token = subject_token(&text);
        prop_assert!(is_one_token(&token), "{text:?} → {token:?}");
        prop_assert!(token.len() <= MAX_TOKEN_LEN, "{} bytes", token.len());
        // The subject has exactly three tokens, whatever the event name.
        let subject = webhook_subject("github", Some(&text));
        prop_assert_eq!(subject.split('.').count(), 3, "{}", subject);
        prop_assert!(subject.starts_with("webhooks.github."));
        // Safe names pass through unchanged.
        if is_one_token(&text) && text.len() <= MAX_TOKEN_LEN {
            prop_assert_eq!(&token, &text);
        }
        if text.is_empty() {
            prop_assert_eq!(token, UNKNOWN_EVENT);
        }
    }

    #[test]
    fn byte_sizes_parse_or_fail_cleanly(
        text in prop_oneof![
            any::<String>(),
            "[0-9 ]{0,25}(B|KB|kB|KiB|MB|MiB|GB|GiB|TiB|b|)[ ]{0,2}",
        ]
    ) {
        match ByteSize::parse(&text) {
            Ok(ByteSize(bytes)) => {
                // Whatever parses is digits times a known unit, without overflow.
                let digits: String = text.trim().chars().take_while(char::is_ascii_digit).collect();
                let number: u64 = digits.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert!(bytes >= number, "{text:?} → {bytes}");
            }
            Err(message) => prop_assert!(message.contains("invalid size"), "{message}"),
        }
    }

    #[test]
    fn byte_sizes_round_trip(number in 0u64..(1 << 33), unit in prop::sample::select(vec![
        ("", 1u64), ("B", 1), ("KB", 1_000), ("KiB", 1 << 10), ("MB", 1_000_000),
        ("MiB", 1 << 20), ("GB", 1_000_000_000), ("GiB", 1 << 30),
    ])) {
        let (suffix, factor) = unit;
        let parsed = ByteSize::parse(&format!("{number}{suffix}"));
        match number.checked_mul(factor) {
            Some(bytes) => prop_assert_eq!(parsed, Ok(ByteSize(bytes))),
            None => prop_assert!(parsed.is_err()),
        }
    }

    #[test]
    fn durations_parse_or_fail_cleanly(
        text in prop_oneof![
            any::<String>(),
            "[0-9]{0,30}(ns|us|ms|s|m|h|d|w|y|M|parsecs|)( [0-9]{1,5}(ms|s|m))?",
        ]
    ) {
        match config::parse_duration(&text) {
            Ok(duration) => prop_assert!(duration <= Duration::MAX),
            Err(message) => prop_assert!(message.contains("invalid duration"), "{message}"),
        }
    }
}

/// The platform's sections, as a binary would deserialize them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // only parsing is under test
struct Platform {
    #[serde(default)]
    nats: NatsConfig,
    #[serde(default)]
    stream: StreamConfig,
    #[serde(default)]
    telemetry: TelemetryConfig,
}

/// A TOML-ish document: real keys and sections with random values, and
/// random garbage lines.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "url",
        "name",
        "user",
        "password",
        "token",
        "connect_timeout",
        "request_timeout",
        "ping_interval",
        "replicas",
        "max_age",
        "duplicate_window",
        "max_bytes",
        "dlq_name",
        "log_format",
        "unknown_key",
    ]);
    let value = prop_oneof![
        Just("\"10s\"".to_owned()),
        Just("\"1MiB\"".to_owned()),
        Just("{ env = \"X\" }".to_owned()),
        Just("{ file = \"/nonexistent\" }".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ nested = { deeper = 1 } }".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
    ];
    let section = prop::sample::select(vec![
        "[nats]",
        "[stream]",
        "[telemetry]",
        "[ingest]",
        "[[sources]]",
        "[nats.tls]",
        "[x]",
    ]);
    let line = prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => section.prop_map(str::to_owned),
        1 => "[\\PC]{0,40}",
    ];
    prop::collection::vec(line, 0..20).prop_map(|lines| lines.join("\n"))
}

fn env_overrides() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "HOOKLINE_NATS_URL",
            "HOOKLINE_STREAM_REPLICAS",
            "HOOKLINE_STREAM_MAX_AGE",
            "HOOKLINE_NATS_PASSWORD",
            "HOOKLINE_NATS_PASSWORD__ENV",
            "HOOKLINE_STREAM__",
            "HOOKLINE_NATS_",
            "HOOKLINE_",
            "HOOKLINE_TELEMETRY_LOG_FORMAT",
            "HOOKLINE_NATS_URL__X__Y",
            "HOOKLINE_CONFIG",
            "PATH",
        ])
        .prop_map(str::to_owned),
        "HOOKLINE_(NATS|STREAM|INGEST|TELEMETRY|PROCESSOR)_[A-Z_]{0,20}",
    ];
    let value = prop_oneof![
        any::<String>(),
        Just("[\"a\", 1]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("3".to_owned()),
        Just("\"quoted\"".to_owned()),
        Just("[".to_owned()),
    ];
    prop::collection::vec((name, value), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn config_loading_never_panics(text in config_text(), env in env_overrides()) {
        let file = tempfile::NamedTempFile::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(file.path(), &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match config::load::<Platform>(Some(file.path()), env.clone()) {
            Ok(platform) => {
                // Whatever loads can be validated without panicking.
                let _ = platform.stream.validate();
                let _ = platform.nats.server_addrs();
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
        // And with no file at all.
        let _ = config::load::<Platform>(None, env);
    }
}

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
        "~",
        "sha256:",
        "=",
    ]);
    prop_oneof![
        any::<String>(),
        "[!-~]{0,260}",
        "[!-~=~]{3000,4100}",
        prop::collection::vec(fragment, 0..60).prop_map(|p| p.concat()),
    ]
}

fn source_name() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,64}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn webhook_keys_are_bounded_valid_header_values(source in source_name(), id in provider_id()) {
        let key = WebhookKey::new(&source, &id).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let value = key.message_id();
        // A NATS header value must not contain CR or LF (async-nats panics
        // on them in `From<&str>`); ours is printable ASCII throughout.
        prop_assert!(value.parse::<async_nats::HeaderValue>().is_ok(), "{value:?}");
        prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()), "{value:?}");
        prop_assert!(value.len() <= MAX_MESSAGE_ID_LEN, "{} bytes", value.len());
        prop_assert_eq!(key.idempotency_key(), value);
        let record = key.record_key("group-with-64-bytes-------------------------------------------x");
        prop_assert!(record.len() <= MAX_RECORD_KEY_LEN, "{} bytes", record.len());
        prop_assert!(record.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-=".contains(&b)), "{record}");
        prop_assert_eq!(key.source(), source.as_str());
        // Readable ids are kept verbatim so operators can search for them.
        let readable = !id.is_empty() && id.len() <= MAX_READABLE_ID && !id.starts_with('~')
            && id.bytes().all(|b| b.is_ascii_graphic());
        if readable {
            prop_assert_eq!(key.id(), id.as_str());
        } else {
            prop_assert!(key.id().starts_with(HASHED_ID_PREFIX) && key.id().len() == 72, "{}", key.id());
        }
        prop_assert_eq!(WebhookKey::new(&source, &id).ok(), Some(key.clone()), "not deterministic");
        // A readable id spelling this key's id is another webhook.
        if key.is_hashed() {
            prop_assert_ne!(WebhookKey::new(&source, key.id()).ok(), Some(key));
        }
    }

    #[test]
    fn distinct_ids_stay_distinct(source in source_name(), ids in prop::collection::hash_set(provider_id(), 2..20)) {
        let mapped: HashSet<WebhookKey> = ids
            .iter()
            .filter_map(|id| WebhookKey::new(&source, id).ok())
            .collect();
        prop_assert_eq!(mapped.len(), ids.len());
    }
}
