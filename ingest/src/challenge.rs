//! Provider handshakes that ingest answers itself, after verification,
//! instead of publishing: they are not webhooks, and the provider waits for
//! a specific reply before it will deliver anything.
//!
//! - Slack's `url_verification`: reply with the `challenge` value.

use serde::Deserialize;

/// The reply a handshake expects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChallengeReply {
    /// Slack's `challenge`, echoed.
    pub challenge: String,
}

#[derive(Deserialize)]
struct SlackHandshake {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
}

/// The reply for a verified request that is a handshake, or `None` for a webhook.
pub fn handshake(scheme: &str, body: &[u8]) -> Option<ChallengeReply> {
    if scheme != "slack" || !body.starts_with(b"{") {
        return None;
    }
    let handshake: SlackHandshake = serde_json::from_slice(body).ok()?;
    match (handshake.kind.as_str(), handshake.challenge) {
        ("url_verification", Some(challenge)) => Some(ChallengeReply { challenge }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slack_url_verification_is_a_handshake() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aB","type":"url_verification"}"#;
        assert_eq!(
            handshake("slack", body),
            Some(ChallengeReply {
                challenge: "3eZbrw1aB".into()
            })
        );
        assert_eq!(handshake("github", body), None);
        assert_eq!(handshake("slack", br#"{"type":"event_callback"}"#), None);
        assert_eq!(handshake("slack", b"token=x&command=%2Fdeploy"), None);
    }
}
