//! Printing an error with its causes on one line, each cause once.
//!
//! Some libraries (async-nats among them) print their source inside their
//! own message *and* return it from `source()`, so walking the chain
//! naively repeats a cause two or three times (`cannot read: timed out:
//! timed out`). [`chain`] skips a cause whose text is already shown.

use std::error::Error;
use std::fmt;

/// `error: cause: deeper cause`, each text once, on one line.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    Chain(error).to_string()
}

/// [`chain`] as a `Display` value, for log fields: `error = %Chain(&e)`.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        let mut next: Option<&(dyn Error + 'static)> = Some(self.0);
        while let Some(error) = next {
            next = error.source();
            let mut own = error.to_string();
            // `kind: <source>`: keep the kind, the source follows.
            if let Some(source) = next {
                let suffix = format!(": {source}");
                if own.len() > suffix.len() && own.ends_with(&suffix) {
                    own.truncate(own.len() - suffix.len());
                }
            }
            // Shown already: verbatim, or its own last part ends the text
            // (`authorization violation`, then `nats: authorization violation`).
            let last_part = own.rsplit(": ").next().unwrap_or_default();
            if own.is_empty() || text.contains(&own) || text.ends_with(last_part) {
                continue;
            }
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&own);
        }
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("leaf failure")]
    struct Leaf;

    /// Prints its source inside its message, as async-nats errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed: {0}")]
    struct Echoing(#[source] Leaf);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the stream")]
    struct Outer(#[source] Echoing);

    #[test]
    fn each_cause_is_printed_once() {
        assert_eq!(
            chain(&Outer(Echoing(Leaf))),
            "cannot read the stream: request failed: leaf failure"
        );
        assert_eq!(chain(&Leaf), "leaf failure");
        assert_eq!(
            chain(&Outer(Echoing(Leaf))).matches("leaf failure").count(),
            1
        );
    }
}
