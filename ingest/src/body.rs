//! Reading a request body within its bounds: the source's size limit, the
//! body timeout, the minimum data rate, and the memory budget, reserved when
//! the first bytes arrive (see [`crate::budget`]).

use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::budget::{NoBudget, Reservation};
use crate::envelope;
use crate::error::IngestError;

/// The minimum body data rate is checked over windows of this length: a
/// body still arriving must deliver `min_body_rate × 5 s` in every window.
pub const BODY_RATE_WINDOW: Duration = Duration::from_secs(5);

/// The bounds one body is read within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyBounds {
    /// The source's `max_body`.
    pub(crate) limit: usize,
    /// When the head was complete.
    pub(crate) started: Instant,
    /// `ingest.body_timeout`.
    pub(crate) timeout: Duration,
    /// `ingest.min_body_rate` in bytes per second; 0 disables the check.
    pub(crate) min_rate: u64,
    /// Sent as `Retry-After` when the body is shed.
    pub(crate) retry_after: Duration,
}

/// A request body as read by [`read_body`].
pub(crate) struct ReadBody {
    /// `buffer[offset..]` is the body.
    pub(crate) buffer: BytesMut,
    pub(crate) offset: usize,
    /// The buffer is an Envelope payload begun by
    /// [`envelope::start_payload`] (the body had a declared length).
    pub(crate) in_place: bool,
}

/// Reads the body, never buffering past `bounds.limit`, never waiting past
/// the body timeout, cutting a body that arrives slower than the minimum
/// rate, and reserving its budget when its first bytes arrive. A body with a
/// declared length is read straight into its place in the message
/// payload; others into a buffer of their own. (Copying out of hyper's read
/// buffer also keeps a small body from pinning that whole buffer while the
/// PubAck is awaited.)
pub(crate) async fn read_body(
    mut body: Body,
    declared: Option<u64>,
    bounds: BodyBounds,
    reservation: &mut Reservation<'_>,
) -> Result<ReadBody, IngestError> {
    let limit = bounds.limit;
    let declared = declared
        .and_then(|len| usize::try_from(len).ok())
        .filter(|&len| len <= limit);
    let offset = declared.map_or(0, envelope::body_offset);
    // Allocated once the budget for it is reserved (at the first bytes).
    let mut buffer = BytesMut::new();
    let deadline = bounds.started + bounds.timeout;
    let mut window = RateWindow::new(bounds.started, bounds.min_rate);
    let timer = tokio::time::sleep_until(window.next_check(deadline));
    tokio::pin!(timer);
    let mut shed: Option<CancellationToken> = None;
    let mut reserved = false;
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            () = &mut timer => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(IngestError::BodyTimeout);
                }
                if !window.passed(now) {
                    return Err(IngestError::BodyTooSlow);
                }
                timer.as_mut().reset(window.next_check(deadline));
                continue;
            }
            () = cancelled(shed.as_ref()) => {
                return Err(IngestError::Shed { retry_after: bounds.retry_after });
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(IngestError::BadBody)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !reserved {
            // The first bytes are here: reserve the whole body at once, its
            // declared length or else the limit. Only now, so a silent
            // client holds nothing; all at once, so a body waiting for
            // budget holds none (bodies holding part and waiting for more
            // would wait for each other until they all time out).
            reservation
                .cover(declared.unwrap_or(limit))
                .await
                .map_err(|no| match no {
                    NoBudget::Exhausted => IngestError::Overloaded {
                        retry_after: bounds.retry_after,
                    },
                    NoBudget::Shed => IngestError::Shed {
                        retry_after: bounds.retry_after,
                    },
                })?;
            reserved = true;
            if let Some(len) = declared {
                buffer = envelope::start_payload(len);
            }
        }
        let received = buffer.len().saturating_sub(offset) + data.len();
        if received > limit {
            return Err(IngestError::BodyTooLarge { limit });
        }
        buffer.extend_from_slice(&data);
        window.bytes += data.len() as u64;
        if shed.is_none() && !body.is_end_stream() {
            // More is coming: from now on this body may be shed in favour
            // of a newcomer if it keeps arriving slowly.
            // Its age counts from now, when it holds budget: not from its
            // head, which may have waited for that budget (under load).
            shed = Some(reservation.arriving(Instant::now()));
        }
    }
    if let (false, Some(len)) = (reserved, declared) {
        // No bytes at all (an empty body): nothing to reserve.
        buffer = envelope::start_payload(len);
    }
    let in_place = declared.is_some_and(|len| buffer.len() - offset == len);
    if declared.is_some() && !in_place {
        // Cannot happen with hyper (it enforces Content-Length); keep the
        // body alone rather than a payload with a wrong length.
        let body = buffer.split_off(offset);
        return Ok(ReadBody {
            buffer: body,
            offset: 0,
            in_place: false,
        });
    }
    Ok(ReadBody {
        buffer,
        offset,
        in_place,
    })
}

async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The minimum data rate, checked over consecutive windows.
#[derive(Debug)]
struct RateWindow {
    start: Instant,
    bytes: u64,
    /// Bytes each window must deliver; 0 when the check is off.
    required: u64,
}

impl RateWindow {
    fn new(start: Instant, min_rate: u64) -> Self {
        Self {
            start,
            bytes: 0,
            required: min_rate.saturating_mul(BODY_RATE_WINDOW.as_secs()),
        }
    }

    /// When the timer next fires: the window's end or the body deadline.
    fn next_check(&self, deadline: Instant) -> Instant {
        if self.required == 0 {
            deadline
        } else {
            deadline.min(self.start + BODY_RATE_WINDOW)
        }
    }

    /// At a window's end: whether it delivered enough; starts the next one.
    fn passed(&mut self, now: Instant) -> bool {
        let passed = self.required == 0 || self.bytes >= self.required;
        self.start = now;
        self.bytes = 0;
        passed
    }
}
