//! Whether a request's body was read to its end. One left unread (refused as
//! too large, or answered before it was needed) stays on the connection, so
//! the connection cannot carry another request, and the answer must say
//! `Connection: close`: a client that sent its next request on it would find
//! it closed unanswered, and a POST is not retried.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::HttpBody;
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

/// A body that notes when it has been read to its end.
pub struct Watched<B> {
    inner: B,
    ended: Arc<AtomicBool>,
}

/// Tells whether the watched body was read to its end.
pub struct ReadToEnd(Arc<AtomicBool>);

/// Watches `body`; an empty body counts as read.
pub fn watch<B: HttpBody>(body: B) -> (Watched<B>, ReadToEnd) {
    let ended = Arc::new(AtomicBool::new(body.is_end_stream()));
    let watched = Watched {
        inner: body,
        ended: ended.clone(),
    };
    (watched, ReadToEnd(ended))
}

impl ReadToEnd {
    /// Marks `response` as the connection's last if the body was left unread.
    pub fn close_if_unread(&self, response: &mut Response) {
        if !self.0.load(Ordering::Relaxed) {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

impl<B: HttpBody + Unpin> HttpBody for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.ended.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
