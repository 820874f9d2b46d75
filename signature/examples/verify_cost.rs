//! Verification cost per request of each scheme family, in-process (no HTTP):
//! `cargo run --release -p hookline-signature --example verify_cost`.
//! The figures in docs/performance.md come from this.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookline_signature::{
    Credentials, ProviderSpec, Request, SignRequest, Signer, Verifier, test_key_pair,
};

const BODY_BYTES: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH)?.as_secs();
    let body: Vec<u8> = format!(
        "{{\"id\":\"evt_1\",\"type\":\"bench\",\"pad\":\"{}\"}}",
        "x".repeat(BODY_BYTES - 40)
    )
    .into_bytes();
    let form = format!(
        "MessageSid=SM1&MessageStatus=delivered&Body={}",
        "x".repeat(BODY_BYTES - 40)
    )
    .into_bytes();
    println!("| family (preset) | verify, ns/request (1 KiB body) |\n|---|---|");
    for (family, name) in [
        ("HMAC-SHA256 (github)", "github"),
        ("HMAC-SHA256 + timestamp (stripe)", "stripe"),
        ("declarative HMAC-SHA256 (razorpay)", "razorpay"),
        ("declarative HMAC-SHA512 (paystack)", "paystack"),
        ("URL-signed HMAC-SHA1 (twilio)", "twilio"),
        ("JWS HS256 (netlify)", "netlify"),
        ("Ed25519 (discord)", "discord"),
        ("ECDSA P-256 (sendgrid)", "sendgrid"),
    ] {
        let spec: ProviderSpec = name.parse()?;
        let (signing, configured) = match test_key_pair(&spec, b"bench")? {
            Some(pair) => (pair.private, pair.public),
            None => (
                "bench-secret-0123456789".to_owned(),
                "bench-secret-0123456789".to_owned(),
            ),
        };
        let signer = Signer::with_credentials(
            &spec,
            &Credentials {
                secrets: &[signing.as_bytes()],
                ..Credentials::default()
            },
        )?;
        let verifier = Verifier::new(&spec, &[configured.as_bytes()], None)?;
        let payload = if name == "twilio" { &form } else { &body };
        let signed = signer.sign_request(&SignRequest {
            body: payload,
            id: "1:bench",
            event: "bench",
            timestamp: unix,
            url: "https://hooks.example.com/webhooks/bench",
            method: "POST",
        });
        let mut headers = http::HeaderMap::new();
        for (header, value) in signed.headers {
            headers.insert(header, value.parse()?);
        }
        let request = Request::new(&headers, &signed.body).with_url(&signed.url);
        verifier
            .verify(&request, now)
            .map_err(|e| format!("{name}: {e}"))?;
        // Warm up, then time a fixed wall-clock budget.
        let mut rounds = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(600) {
            for _ in 0..100 {
                std::hint::black_box(verifier.verify(std::hint::black_box(&request), now)).ok();
            }
            rounds += 100;
        }
        let per = started.elapsed().as_nanos() / u128::from(rounds);
        println!("| {family} | {per} |");
    }
    Ok(())
}
