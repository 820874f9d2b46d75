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
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !cause_text.is_empty() && !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
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
    }
}
