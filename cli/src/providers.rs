//! `hookline providers`: the provider catalogue of the signature crate, as a
//! table or JSON. The docs' provider table is rendered from the same data.

use hookline_signature::{providers, window_text};
use serde_json::json;

use crate::Result;
use crate::args::ProvidersArgs;
use crate::table::Table;

/// Prints the catalogue.
///
/// # Errors
/// None today; the signature keeps commands uniform.
pub fn run(args: &ProvidersArgs) -> Result<()> {
    print!("{}", render(args.json));
    Ok(())
}

/// The catalogue as the command prints it.
pub fn render(as_json: bool) -> String {
    if as_json {
        let list: Vec<serde_json::Value> = providers()
            .iter()
            .map(|provider| {
                json!({
                    "name": provider.name,
                    "title": provider.title,
                    "scheme": provider.family.as_str(),
                    "replay_window_seconds": provider.replay_window.map(|w| w.as_secs_f64()),
                    "handshake": provider.handshake,
                    "secret": provider.secret,
                    "notes": provider.notes,
                    "needs": {
                        "public_url": provider.uses_public_url(),
                        "verify_token": provider.uses_verify_token(),
                        "public_key": provider.uses_public_key(),
                    },
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::Array(list));
    }
    let mut table = Table::new(&["PROVIDER", "SCHEME", "WINDOW", "HANDSHAKE", "SECRET"]);
    for provider in providers() {
        table.row(vec![
            provider.name.to_owned(),
            provider.family.as_str().to_owned(),
            window_text(provider.replay_window),
            provider.handshake.unwrap_or("-").to_owned(),
            provider.secret.to_owned(),
        ]);
    }
    format!(
        "{}\n{} presets; setup notes: docs/providers.md. `provider = \"hmac\"` describes any other HMAC sender.\n",
        table.render(),
        providers().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_preset_in_both_forms() {
        let text = render(false);
        let json: serde_json::Value = serde_json::from_str(&render(true)).unwrap();
        let list = json.as_array().unwrap();
        assert!(list.len() >= 54);
        for provider in providers() {
            assert!(text.contains(provider.name), "{}", provider.name);
        }
        assert!(
            list.iter()
                .any(|p| p["name"] == "twilio" && p["needs"]["public_url"] == true)
        );
    }
}
