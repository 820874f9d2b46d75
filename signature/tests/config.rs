//! Configuration is checked at start-up with messages an operator can act on.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_signature::{ConfigError, HmacSpec, ProviderSpec, Request, Signer, Verifier};
use support::{LINEAR, PADDLE, PAGERDUTY, ZOOM, builtin, parse_source, source};

/// The keys ingest's source table owns itself.
const INGEST_KEYS: &[&str] = &["name", "secrets", "tolerance", "max_body"];

fn hmac_error(settings: &str) -> String {
    let text = format!(
        "[[sources]]\nname = \"x\"\nprovider = \"hmac\"\nheader = \"X-Signature\"\n{settings}\n"
    );
    let source = source(&text);
    match Verifier::new(&source.provider, &[b"secret"], source.tolerance()) {
        Ok(verifier) => panic!("{settings:?} was accepted: {verifier:?}"),
        Err(error) => error.to_string(),
    }
}

fn assert_contains(message: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

#[test]
fn unknown_provider_names_the_choices() {
    let error = parse_source(&builtin("gitlub")).unwrap_err().to_string();
    assert_contains(
        &error,
        &[
            "unknown provider `gitlub`",
            "hmac",
            "hookline providers",
            "github",
        ],
    );

    let error = "gitlub".parse::<ProviderSpec>().unwrap_err();
    assert!(matches!(error, ConfigError::UnknownProvider(ref name) if name == "gitlub"));
    assert_contains(
        &error.to_string(),
        &["unknown provider `gitlub`", "github, stripe"],
    );
    assert_eq!("gitlab".parse::<ProviderSpec>().unwrap().scheme(), "gitlab");
    assert!(matches!(
        "hmac".parse::<ProviderSpec>(),
        Err(ConfigError::HmacNeedsSettings)
    ));
    assert_eq!(
        "svix".parse::<ProviderSpec>().unwrap(),
        ProviderSpec::StandardWebhooks
    );
    assert_eq!(
        "github".parse::<ProviderSpec>().unwrap(),
        ProviderSpec::Github
    );
}

#[test]
fn bad_whsec_base64_is_refused() {
    let spec = ProviderSpec::StandardWebhooks;
    let error = Verifier::new(&spec, &[b"whsec_not*base64!"], None).unwrap_err();
    assert!(matches!(error, ConfigError::SecretNotBase64(_)));
    assert_eq!(
        error.to_string(),
        "standard-webhooks secret is not valid base64 after the whsec_ prefix"
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the decode error is kept as the source"
    );
    assert!(matches!(
        Verifier::new(&spec, &[b"whsec_"], None),
        Err(ConfigError::EmptySecret)
    ));
}

#[test]
fn secrets_must_be_present_and_non_empty() {
    let spec = ProviderSpec::Github;
    assert!(matches!(
        Verifier::new(&spec, &[], None),
        Err(ConfigError::NoSecret)
    ));
    assert!(matches!(
        Verifier::new(&spec, &[b"ok", b""], None),
        Err(ConfigError::EmptySecret)
    ));
    assert!(matches!(
        Signer::new(&spec, b""),
        Err(ConfigError::EmptySecret)
    ));
}

#[test]
fn bad_templates_are_refused_with_clear_messages() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"signed = "{tz}:{body}""#,
            &[
                "unknown placeholder `{tz}`",
                "{body}, {timestamp}",
                "{header:NAME}",
            ],
        ),
        (
            r#"signed = "{secret}{body}""#,
            &["{secret} belongs in `signed` exactly when mode = \"hash\""],
        ),
        (r#"signed = "{body""#, &["unclosed `{`"]),
        (r#"signed = "{timestamp}""#, &["must include {body}"]),
        (
            r#"signed = "{timestamp}:{body}""#,
            &["uses {timestamp}", "no timestamp source"],
        ),
        (
            r#"signed = "{id}.{body}""#,
            &["uses {id}", "`id_header` is not set"],
        ),
        (
            "signed = \"{timestamp}.{body}\"\ntimestamp_json = \"ts\"",
            &["cannot come from timestamp_json"],
        ),
        (
            "timestamp_header = \"X-Ts\"",
            &["does not include {timestamp}", "no replay protection"],
        ),
    ];
    for (settings, fragments) in cases {
        assert_contains(&hmac_error(settings), fragments);
    }
}

#[test]
fn inconsistent_hmac_settings_are_refused() {
    let cases: &[(&str, &[&str])] = &[
        (
            "signed = \"{timestamp}:{body}\"\ntimestamp_header = \"X-Ts\"\ntimestamp_json = \"ts\"",
            &["at most one of timestamp_header, timestamp_param and timestamp_json"],
        ),
        (
            "separator = \";\"\ntimestamp_param = \"ts\"",
            &["`timestamp_param` needs `signature_param`"],
        ),
        (
            "signature_param = \"h1\"",
            &["`signature_param` needs `separator`"],
        ),
        (
            "separator = \";\"\nsignature_param = \"h1\"\nprefix = \"v1=\"",
            &["`prefix` cannot be combined with `signature_param`"],
        ),
        ("separator = \"\"", &["`separator` must not be empty"]),
        (
            "id_header = \"Bad Header\"",
            &["`id_header` = \"Bad Header\" is not a valid HTTP header name"],
        ),
        (
            "event_json = \"event..type\"",
            &["`event_json` = \"event..type\" is not a dot-separated JSON field path"],
        ),
        (
            "tolerance = \"1m\"",
            &["hmac", "signs no timestamp", "remove it"],
        ),
    ];
    for (settings, fragments) in cases {
        assert_contains(&hmac_error(settings), fragments);
    }
    let error = parse_source(
        "[[sources]]\nname = \"x\"\nprovider = \"hmac\"\nheader = \"X\"\nencoding = \"base32\"\n",
    )
    .unwrap_err()
    .to_string();
    assert_contains(&error, &["unknown variant `base32`", "hex", "base64"]);
    let error =
        parse_source("[[sources]]\nname = \"x\"\nprovider = \"hmac\"\nencoding = \"hex\"\n")
            .unwrap_err()
            .to_string();
    assert_contains(&error, &["missing field `header`"]);
}

#[test]
fn tolerance_on_an_untimestamped_scheme_is_refused() {
    for spec in [ProviderSpec::Github, ProviderSpec::Shopify] {
        let error = Verifier::new(&spec, &[b"s"], Some(Duration::from_secs(60))).unwrap_err();
        assert_contains(&error.to_string(), &[spec.scheme(), "signs no timestamp"]);
    }
    let pagerduty = source(PAGERDUTY);
    assert!(Verifier::new(&pagerduty.provider, &[b"s"], Some(Duration::from_secs(60))).is_err());
}

#[test]
fn schemes_and_default_windows() {
    let five_minutes = Some(Duration::from_secs(300));
    let cases = [
        (builtin("github"), "github", None),
        (builtin("stripe"), "stripe", five_minutes),
        (
            builtin("standard-webhooks"),
            "standard-webhooks",
            five_minutes,
        ),
        (builtin("svix"), "standard-webhooks", five_minutes),
        (builtin("shopify"), "shopify", None),
        (builtin("slack"), "slack", five_minutes),
        (LINEAR.to_owned(), "hmac", five_minutes),
        (PADDLE.to_owned(), "hmac", five_minutes),
        (PAGERDUTY.to_owned(), "hmac", None),
        (ZOOM.to_owned(), "hmac", five_minutes),
    ];
    for (text, scheme, tolerance) in cases {
        let source = source(&text);
        assert_eq!(source.provider.scheme(), scheme, "{text}");
        assert_eq!(source.provider.default_tolerance(), tolerance, "{text}");
        let secret: &[u8] = if scheme == "standard-webhooks" {
            b"whsec_c2VjcmV0"
        } else {
            b"s"
        };
        assert_eq!(source.verifier(&[secret]).scheme(), scheme);
    }
}

/// Ingest refuses any key that is neither its own nor the provider's.
fn unknown_keys(text: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let Some(toml::Value::Table(entry)) = table
        .get("sources")
        .and_then(toml::Value::as_array)
        .and_then(|sources| sources.first())
    else {
        panic!("one [[sources]] table expected");
    };
    let provider = source(text).provider;
    entry
        .keys()
        .filter(|key| {
            !INGEST_KEYS.contains(&key.as_str()) && !provider.known_keys().contains(&key.as_str())
        })
        .cloned()
        .collect()
}

#[test]
fn known_keys_let_the_embedding_config_refuse_typos() {
    for text in [LINEAR, PADDLE, PAGERDUTY, ZOOM] {
        assert_eq!(unknown_keys(text), Vec::<String>::new(), "{text}");
    }
    assert_eq!(unknown_keys(&builtin("github")), Vec::<String>::new());
    let typo = format!("{PAGERDUTY}separater = \";\"\n");
    assert_eq!(unknown_keys(&typo), ["separater"]);
    let hmac_key_on_github = format!("{}header = \"X\"\n", builtin("github"));
    assert_eq!(unknown_keys(&hmac_key_on_github), ["header"]);
}

#[test]
fn hmac_keys_list_every_setting() {
    let text = r#"
provider = "hmac"
header = "A"
encoding = "base64"
prefix = "p="
separator = ","
signature_param = "s"
timestamp_param = "t"
signed = "{timestamp}{body}"
timestamp_header = "B"
timestamp_json = "c"
timestamp_unit = "ms"
reject_future = false
id_header = "D"
id_json = "e"
event_header = "F"
event_json = "g"
mode = "hash"
algorithm = "sha512"
key_encoding = "hex"
key_prefix = "k_"
prefix_optional = true
exact_params = true
future_tolerance = "0s"
token_json = "h"
token_format = "basic"

[require_headers]
X-Version = "1"
"#;
    let ProviderSpec::Hmac(spec) = toml::from_str::<ProviderSpec>(text).unwrap() else {
        panic!("hmac");
    };
    // Destructuring fails to compile when a field is added, pointing here.
    let HmacSpec {
        header,
        mode,
        algorithm,
        encoding,
        key_encoding,
        key_prefix,
        prefix_optional,
        exact_params,
        future_tolerance,
        require_headers,
        token_json,
        token_format,
        prefix,
        separator,
        signature_param,
        timestamp_param,
        signed,
        timestamp_header,
        timestamp_json,
        timestamp_unit,
        reject_future,
        id_header,
        id_json,
        event_header,
        event_json,
    } = *spec;
    assert_eq!(header, "A");
    assert_eq!(encoding, hookline_signature::Encoding::Base64);
    assert_eq!(timestamp_unit, hookline_signature::TimestampUnit::Millis);
    assert!(!reject_future);
    assert_eq!(signed, "{timestamp}{body}");
    assert_eq!(mode, hookline_signature::Mode::Hash);
    assert_eq!(algorithm, hookline_signature::Algorithm::Sha512);
    assert_eq!(key_encoding, hookline_signature::KeyEncoding::Hex);
    assert_eq!(token_format, hookline_signature::TokenFormat::Basic);
    assert!(prefix_optional && exact_params);
    assert_eq!(require_headers.len(), 1);
    for value in [
        key_prefix,
        future_tolerance,
        token_json,
        prefix,
        separator,
        signature_param,
        timestamp_param,
        timestamp_header,
        timestamp_json,
        id_header,
        id_json,
        event_header,
        event_json,
    ] {
        assert!(value.is_some());
    }
    let table: toml::Table = toml::from_str(text).unwrap();
    let written: BTreeSet<&str> = table.keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = HmacSpec::KEYS.iter().copied().collect();
    assert_eq!(written, known);
}

#[test]
fn debug_output_never_shows_secrets_or_signatures() {
    let secret = b"whsec_c3VwZXItc2VjcmV0LXZhbHVl";
    let spec = ProviderSpec::StandardWebhooks;
    let verifier = Verifier::new(&spec, &[secret], None).unwrap();
    let signer = Signer::new(&spec, secret).unwrap();
    for shown in [format!("{verifier:?}"), format!("{signer:?}")] {
        assert!(!shown.contains("c3VwZXI"), "{shown}");
        assert!(!shown.contains("super"), "{shown}");
    }
    let signed = signer.sign(b"{}", "msg", "", 1);
    let headers = support::signed_headers(signed.clone());
    let shown = format!("{:?}", Request::new(&headers, b"{}"));
    assert!(shown.contains("webhook-signature"), "{shown}");
    let signature = &signed
        .iter()
        .find(|(name, _)| name == "webhook-signature")
        .unwrap()
        .1;
    assert!(!shown.contains(signature.as_str()), "{shown}");
}

/// The four documented configurations are exactly the ones tested against the vectors.
#[test]
fn documented_hmac_examples_are_the_tested_ones() {
    let docs: String = include_str!("../src/hmac_spec.rs")
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("///"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    for example in [LINEAR, PADDLE, PAGERDUTY, ZOOM] {
        assert!(docs.contains(example), "HmacSpec docs lack:\n{example}");
    }
}
