//! The threads that serve accepted connections, requests and all.
//!
//! Each thread runs a single-threaded runtime with an epoll of its own, and a
//! connection stays on the thread it was handed to, as with nginx's workers.
//! On the work-stealing runtime one worker at a time waits on the sockets and
//! wakes another to share what it found: with 2 cores shared with the load
//! generator, the cores sat 3–5% idle under `/mmhead` load and the server
//! trailed nginx. Handing each request back to that runtime instead cost two
//! thread wake-ups a request, and a quarter to half of the API's throughput.
//! Work that takes long (decoding, rendering) goes to the blocking pool as
//! before, so one busy request does not hold up its thread's connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::mpsc;

type Serve = Box<dyn FnOnce(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A connection on its way to a thread, what serves it there, and its place
/// in that thread's count.
struct Job {
    stream: std::net::TcpStream,
    serve: Serve,
    counted: Counted,
}

/// The connection threads. Dropping this ends them once they have taken what
/// was handed over; a connection still open then is closed.
pub struct ConnectionThreads(Vec<ConnectionThread>);

struct ConnectionThread {
    jobs: mpsc::UnboundedSender<Job>,
    /// Connections handed to this thread and not yet ended.
    serving: Arc<AtomicUsize>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one). They log where the caller logs:
    /// its thread's subscriber if it set one, else the global one.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let logs = tracing::dispatcher::get_default(Clone::clone);
        let threads = (0..count.max(1))
            .map(|index| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()?;
                let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
                let serving = Arc::new(AtomicUsize::new(0));
                let logs = logs.clone();
                std::thread::Builder::new()
                    .name(format!("gewe-http-{index}"))
                    .spawn(move || {
                        let _logs = tracing::dispatcher::set_default(&logs);
                        runtime.block_on(async move {
                            while let Some(job) = queue.recv().await {
                                serve_here(job);
                            }
                        });
                    })?;
                Ok(ConnectionThread { jobs, serving })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(ConnectionThreads(threads))
    }

    /// Hands `stream` to the thread serving the fewest connections, where
    /// `serve` runs. Fails only if that thread has ended.
    pub fn hand_over<F, Fut>(&self, stream: TcpStream, serve: F) -> std::io::Result<()>
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ended = || std::io::Error::other("a connection thread has ended");
        let stream = stream.into_std()?;
        let thread = self
            .0
            .iter()
            .min_by_key(|thread| thread.serving.load(Ordering::Relaxed))
            .ok_or_else(ended)?;
        let counted = Counted::new(&thread.serving);
        let serve: Serve = Box::new(move |stream| Box::pin(serve(stream)));
        let job = Job {
            stream,
            serve,
            counted,
        };
        thread.jobs.send(job).map_err(|_| ended())
    }
}

/// One connection in a thread's count, for as long as this lives: taken when
/// it is handed over, so the next choice sees it, and given back however its
/// serving ends (a panic included).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(serving: &Arc<AtomicUsize>) -> Self {
        serving.fetch_add(1, Ordering::Relaxed);
        Counted(serving.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs on a connection thread: registers the stream with this thread's epoll
/// and serves it on this thread's runtime.
fn serve_here(job: Job) {
    let Job {
        stream,
        serve,
        counted,
    } = job;
    match TcpStream::from_std(stream) {
        Ok(stream) => {
            tokio::spawn(async move {
                let _counted = counted;
                serve(stream).await;
            });
        }
        Err(e) => tracing::warn!(error = %e, "a connection could not be served"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use super::*;

    /// Connections go to the thread serving the fewest: four held open on two
    /// threads are two on each.
    #[tokio::test]
    async fn connections_are_spread_over_the_threads() {
        let threads = ConnectionThreads::start(2).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (seen, mut names) = mpsc::unbounded_channel::<String>();
        let mut clients = Vec::new();
        let mut holds = Vec::new();
        for _ in 0..4 {
            clients.push(TcpStream::connect(address).await.unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let (hold, held) = oneshot::channel::<()>();
            holds.push(hold);
            let seen = seen.clone();
            threads
                .hand_over(stream, move |_stream| async move {
                    let name = std::thread::current().name().map(str::to_owned);
                    seen.send(name.unwrap_or_default()).unwrap();
                    let _ = held.await;
                })
                .unwrap();
        }
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..4 {
            let name = tokio::time::timeout(Duration::from_secs(10), names.recv())
                .await
                .expect("every connection is served within the deadline")
                .unwrap();
            *counts.entry(name).or_default() += 1;
        }
        let expected = [("gewe-http-0".to_owned(), 2), ("gewe-http-1".to_owned(), 2)];
        assert_eq!(counts, expected.into_iter().collect());
    }

    /// A connection whose serving panicked no longer counts against its
    /// thread, or that thread would be passed over for good.
    #[tokio::test]
    async fn a_connection_whose_serving_panicked_is_no_longer_counted() {
        let threads = ConnectionThreads::start(1).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        threads
            .hand_over(stream, |_stream| async { panic!("serving failed") })
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while threads.0[0].serving.load(Ordering::Relaxed) != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still counted after the panic"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
