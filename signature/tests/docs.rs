//! `docs/providers.md` holds the catalogue's table and setup notes exactly as
//! [`providers_markdown`] renders them. Run with `HOOKLINE_BLESS=1` to rewrite
//! the block after changing the catalogue.

use hookline_signature::providers_markdown;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/providers.md");
const BEGIN: &str = "<!-- BEGIN catalogue: generated from hookline_signature::providers_markdown(); edit signature/src/catalogue.rs, then run `HOOKLINE_BLESS=1 cargo test -p hookline-signature --test docs` -->\n";
const END: &str = "<!-- END catalogue -->";

#[test]
fn providers_doc_matches_the_catalogue() {
    let text = std::fs::read_to_string(DOC).expect("docs/providers.md is part of the repository");
    let start = text
        .find(BEGIN)
        .expect("docs/providers.md lacks the BEGIN catalogue marker");
    let end = text
        .find(END)
        .expect("docs/providers.md lacks the END catalogue marker");
    let current = &text[start + BEGIN.len()..end];
    let rendered = providers_markdown();
    if current != rendered {
        if std::env::var_os("HOOKLINE_BLESS").is_some() {
            let updated = format!("{}{BEGIN}{rendered}{}", &text[..start], &text[end..]);
            std::fs::write(DOC, updated).expect("write docs/providers.md");
            return;
        }
        panic!(
            "docs/providers.md is out of date with the catalogue: run `HOOKLINE_BLESS=1 cargo test -p hookline-signature --test docs`"
        );
    }
}
