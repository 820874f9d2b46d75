//! Asking before a destructive step (`dlq purge`, `streams apply`).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::error::{Error, Result};

/// Prints `question` on stderr and reads a line from standard input: `true`
/// for a yes. No answer at all (standard input closed, not a terminal) is a
/// usage error naming `without_asking`, the flag that skips the question.
///
/// # Errors
/// Standard input cannot be read, or gives no answer.
pub fn confirm(question: &str, without_asking: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    let mut answer = String::new();
    let read = stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::caused("cannot read the answer", e))?;
    if read == 0 && !stdin.is_terminal() {
        let _ = writeln!(stderr);
        return Err(Error::Usage(format!(
            "no answer on standard input: {without_asking}"
        )));
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
