//! JSON bodies for the answers hyper writes itself. A request hyper cannot
//! parse (malformed head: 400; too many or too large headers: 431) never
//! reaches the router: hyper answers it with an empty body and closes the
//! connection, and has no hook to change that answer. The HTTP contract
//! promises a JSON error for every 4xx, so the connection's writer
//! recognises that one answer and writes it with a short JSON body instead.
//!
//! Recognised by two facts: it is a 4xx head with `content-length: 0`, and
//! no handler produced it. The connection's service counts the responses
//! its handlers return ([`Answered`]); each response head the writer sees
//! is one of those while the count is ahead of the heads already written,
//! and hyper's own otherwise. (Some providers' protocols want an empty
//! 4xx from a handler, e.g. Xero's 401: those pass untouched.)

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many responses a connection's handlers have returned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answered(Arc<AtomicUsize>);

impl Answered {
    /// A handler returned a response (hyper writes its head next).
    pub(crate) fn one_more(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// A connection's byte stream, rewriting hyper's own empty 4xx answers.
#[derive(Debug)]
pub(crate) struct JsonParseErrors<T> {
    inner: T,
    answered: Answered,
    /// Response heads written so far that handlers produced.
    heads: usize,
    /// A rewritten answer not yet fully written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonParseErrors<T> {
    pub(crate) fn new(inner: T, answered: Answered) -> Self {
        Self {
            inner,
            answered,
            heads: 0,
            pending: Vec::new(),
            written: 0,
        }
    }

    /// The rewritten answer when `bytes` is the head of hyper's own answer
    /// (see the module doc); counts heads that handlers produced.
    fn own_answer(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        if !bytes.starts_with(b"HTTP/1.") {
            return None;
        }
        if self.heads < self.answered.count() {
            self.heads += 1;
            return None;
        }
        rewrite(bytes)
    }
}

const EMPTY_BODY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// The rewritten answer when `head` is hyper's own empty 4xx answer.
fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    // "HTTP/1.1 431 …": a 4xx status line.
    if bytes.len() < 12 || !bytes.starts_with(b"HTTP/1.") || &bytes[8..10] != b" 4" {
        return None;
    }
    let head_end = find(bytes, b"\r\n\r\n")?;
    let head = &bytes[..head_end + 2];
    let at = find(head, EMPTY_BODY)?;
    let body: &[u8] = match &bytes[9..12] {
        b"400" => br#"{"error":"bad_request","message":"malformed HTTP request"}"#,
        b"408" => br#"{"error":"header_timeout","message":"request head not received in time"}"#,
        b"414" => br#"{"error":"uri_too_long","message":"request line too long"}"#,
        b"431" => br#"{"error":"headers_too_large","message":"request head too large"}"#,
        _ => br#"{"error":"bad_request","message":"request refused by the HTTP server"}"#,
    };
    let mut out = Vec::with_capacity(bytes.len() + body.len() + 64);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(&head[at + EMPTY_BODY.len() - 2..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(&bytes[head_end + 4..]);
    Some(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<T: AsyncWrite + Unpin> JsonParseErrors<T> {
    /// Writes what is left of a rewritten answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes over a rewritten answer of `len` bytes: claims it written,
    /// writes what it can now and the rest on the next poll.
    fn take_over(
        &mut self,
        cx: &mut Context<'_>,
        rewritten: Vec<u8>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        self.pending = rewritten;
        self.written = 0;
        match self.drain(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(len)),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        match this.own_answer(buf) {
            Some(rewritten) => this.take_over(cx, rewritten, buf.len()),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        let first = bufs.iter().find(|b| !b.is_empty());
        match first.and_then(|head| this.own_answer(head)) {
            Some(mut rewritten) => {
                // hyper's empty answer is one buffer; keep any other as is.
                let mut len = 0;
                let mut seen_head = false;
                for buf in bufs {
                    len += buf.len();
                    if !seen_head && !buf.is_empty() {
                        seen_head = true;
                    } else {
                        rewritten.extend_from_slice(buf);
                    }
                }
                this.take_over(cx, rewritten, len)
            }
            None => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_4xx_answers_are_rewritten() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 15:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(hyper_431).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.ends_with("date: Fri, 04 Dec 2026 15:00:00 GMT"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "headers_too_large");
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let out = rewrite(hyper_400).unwrap();
        assert!(out.ends_with(br#""message":"malformed HTTP request"}"#));

        // A handler's own empty 4xx (Xero's 401) is left alone.
        let mut writer = JsonParseErrors::new(Vec::<u8>::new(), Answered::default());
        writer.answered.one_more();
        assert!(writer.own_answer(hyper_400).is_none());
        assert!(writer.own_answer(hyper_400).is_some(), "then hyper's own");

        for untouched in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\n{...}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            b"{\"a\":1}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0",
        ] {
            assert!(rewrite(untouched).is_none(), "{untouched:?}");
        }
    }
}
