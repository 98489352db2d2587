//! A small, bounded HTTP/1.1 server for `lith serve` (SPEC §5).
//!
//! It serves one request per connection and never reads a request body: a preview
//! server has nothing to accept, and a client that announces a body and never sends
//! it must not hold anything. Every connection is bounded in what it may cost:
//!
//! * a fixed pool of worker threads serves connections concurrently, and when the
//!   pool and its short queue are full a new connection gets `503` at once, so one
//!   client (or a few) cannot stall the others;
//! * the request head is read with a deadline (not a per-read timeout a slow client
//!   can renew byte by byte) and at most [`Limits::head_bytes`] of it: more is `431`;
//! * writes time out, so a client that pipelines requests and never reads releases
//!   its worker, and a response has a deadline of its own
//!   ([`Limits::write_timeout`] plus its length at [`Limits::min_rate`]), so a
//!   client that reads a little before each write times out cannot hold a worker
//!   for the hours a large file would take at its pace;
//! * files are streamed from their handle, not read into memory.
//!
//! Request heads are parsed by `httparse`; routing is the caller's [`Handler`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one connection may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at the same time.
    pub workers: usize,
    /// Accepted connections waiting for a worker; beyond this, `503`.
    pub queue: usize,
    /// The largest request head (request line and headers) read.
    pub head_bytes: usize,
    /// The most headers in a request head.
    pub headers: usize,
    /// The time a client has to send its whole request head.
    pub head_timeout: Duration,
    /// The time a client has to take each part of the response.
    pub write_timeout: Duration,
    /// The slowest pace, in bytes a second, a client may read a response at: its
    /// deadline is `write_timeout` plus its length at this rate.
    pub min_rate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 16,
            queue: 64,
            head_bytes: 16 * 1024,
            headers: 64,
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            // A 17.8 MB `report.json` (10,000 runs) then has five minutes.
            min_rate: 64 * 1024,
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/runs/?q=1`).
    pub target: String,
    /// Whether the client announced a body (which is never read).
    pub has_body: bool,
}

impl Request {
    /// The target's path, without query or fragment.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("/")
    }

    /// The target's query with its `?`, or "".
    pub fn query(&self) -> &str {
        self.target
            .find('?')
            .map_or("", |i| &self.target[i..])
            .split('#')
            .next()
            .unwrap_or("")
    }
}

/// What a response carries.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// A file and its length (from `fstat` on the handle).
    File(File, u64),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: Body::Bytes(body),
        }
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::bytes(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, n) => *n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Routes a request to a response.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Serves `listener` until `stop` is set. Returns when every worker has finished
/// its connection.
pub fn serve(listener: TcpListener, limits: Limits, stop: &AtomicBool, handler: Handler) {
    let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) =
        mpsc::sync_channel(limits.queue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..limits.workers.max(1))
        .map(|_| {
            let rx = Arc::clone(&rx);
            let handler = Arc::clone(&handler);
            let limits = limits.clone();
            std::thread::spawn(move || {
                loop {
                    // The lock is held only while waiting for the next connection.
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some(stream) = next else { break };
                    connection(stream, &limits, &*handler);
                }
            })
        })
        .collect();
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                match tx.try_send(stream) {
                    Ok(()) => {}
                    Err(TrySendError::Full(mut stream)) => {
                        // A 503 is small enough to fit the socket's buffer: the
                        // write does not wait for the client.
                        let _ = stream.set_nonblocking(true);
                        let _ = stream.read(&mut [0u8; 4096]);
                        let _ = stream.set_nonblocking(false);
                        let _ = write_response(
                            &mut stream,
                            Response::text(503, "busy, try again").with_header("Retry-After", "1"),
                            false,
                            &Limits {
                                write_timeout: Duration::from_millis(200),
                                ..limits.clone()
                            },
                        );
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                crate::term::eprint(&format!("lith serve: accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
}

/// How reading a request head ended.
enum Head {
    Complete(Request),
    /// The client closed or reset before a whole head arrived: nothing to answer.
    Gone,
    /// An answer that ends the connection (`400`, `408`, `431`, `505`).
    Refuse(u16, &'static str),
}

fn read_head(stream: &mut TcpStream, limits: &Limits) -> Head {
    let deadline = Instant::now() + limits.head_timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Head::Refuse(408, "the request head did not arrive in time");
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Head::Gone;
        }
        // Never read past the limit (plus one byte to know it was exceeded).
        let room = (limits.head_bytes + 1 - buf.len()).min(chunk.len());
        let n = match stream.read(&mut chunk[..room]) {
            Ok(0) => return Head::Gone,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Head::Refuse(408, "the request head did not arrive in time");
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Head::Gone,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = vec![httparse::EMPTY_HEADER; limits.headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if req.version != Some(1) && req.version != Some(0) {
                    return Head::Refuse(505, "HTTP/1.x only");
                }
                let has_body = req.headers.iter().any(|h| {
                    (h.name.eq_ignore_ascii_case("content-length")
                        && std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            != Some(0))
                        || h.name.eq_ignore_ascii_case("transfer-encoding")
                });
                return Head::Complete(Request {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    has_body,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() > limits.head_bytes => {
                return Head::Refuse(431, "the request head is too large");
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Head::Refuse(431, "too many request headers");
            }
            Err(_) => return Head::Refuse(400, "malformed request"),
        }
    }
}

fn connection(mut stream: TcpStream, limits: &Limits, handler: &dyn Fn(&Request) -> Response) {
    let (resp, head_only) = match read_head(&mut stream, limits) {
        Head::Gone => return,
        Head::Refuse(status, why) => (Response::text(status, why), false),
        Head::Complete(req) => {
            let head_only = req.method == "HEAD";
            let resp = if !matches!(req.method.as_str(), "GET" | "HEAD") {
                Response::text(405, "only GET and HEAD").with_header("Allow", "GET, HEAD")
            } else if req.has_body {
                Response::text(413, "a GET or HEAD request carries no body")
            } else if !req.target.starts_with('/') {
                Response::text(400, "the request target must be a path")
            } else {
                handler(&req)
            };
            (resp, head_only)
        }
    };
    let _ = write_response(&mut stream, resp, head_only, limits);
    linger(stream);
}

/// Closes the connection without resetting it: what the client sent after the head
/// (a pipelined request) is read and dropped, briefly and up to a bound, so the
/// response is not lost to a reset.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 8192];
    let mut drained = 0usize;
    while drained < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn write_response(
    stream: &mut TcpStream,
    resp: Response,
    head_only: bool,
    limits: &Limits,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n",
        resp.status,
        reason(resp.status),
        resp.len()
    );
    for (name, value) in &resp.headers {
        // Values come from lith, but a line break would split the head: drop it.
        if !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let body_len = if head_only { 0 } else { resp.len() };
    let mut out = Deadlined::new(stream, limits, head.len() as u64 + body_len);
    out.write_all(head.as_bytes())?;
    if !head_only {
        match resp.body {
            Body::Bytes(b) => out.write_all(&b)?,
            Body::File(f, n) => {
                io::copy(&mut f.take(n), &mut out)?;
            }
        }
    }
    out.flush()
}

/// A socket written under the response's deadline: each write may wait at most
/// `write_timeout`, and none once the deadline has passed.
struct Deadlined<'a> {
    stream: &'a mut TcpStream,
    per_write: Duration,
    deadline: Instant,
    /// The write timeout the socket has, to set it only when it changes.
    set: Option<Duration>,
}

impl<'a> Deadlined<'a> {
    fn new(stream: &'a mut TcpStream, limits: &Limits, len: u64) -> Deadlined<'a> {
        let at_min_rate = Duration::from_secs_f64(len as f64 / limits.min_rate.max(1) as f64);
        Deadlined {
            stream,
            per_write: limits.write_timeout,
            deadline: Instant::now() + limits.write_timeout + at_min_rate,
            set: None,
        }
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read the response too slowly",
            ));
        }
        let timeout = left.min(self.per_write);
        if self.set != Some(timeout) {
            self.stream.set_write_timeout(Some(timeout))?;
            self.set = Some(timeout);
        }
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(limits: Limits) -> (u16, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handler: Handler =
            Arc::new(|r: &Request| Response::text(200, &format!("{} {}", r.method, r.target)));
        let t = std::thread::spawn(move || serve(listener, limits, &s, handler));
        (port, stop, t)
    }

    fn exchange(port: u16, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn heads_are_bounded_and_bodies_never_awaited() {
        let limits = Limits {
            head_bytes: 1024,
            head_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let (port, stop, t) = start(limits);
        assert!(exchange(port, b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /a?b"));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(4096));
        assert!(exchange(port, big.as_bytes()).starts_with("HTTP/1.1 431 "));
        let many: String = (0..100).map(|i| format!("X{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(exchange(port, many.as_bytes()).starts_with("HTTP/1.1 431 "));
        // A body is announced and never sent: the answer does not wait for it.
        let r = exchange(port, b"GET / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
        let r = exchange(port, b"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 ") && r.contains("Allow: GET, HEAD"));
        // Half a head, then silence: 408 after the deadline.
        assert!(exchange(port, b"GET / HTTP/1.1\r\nHos").starts_with("HTTP/1.1 408 "));
        assert!(exchange(port, b"garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let r = exchange(port, b"HEAD /x HTTP/1.1\r\n\r\n");
        assert!(
            r.contains("Content-Length: 8\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }

    #[test]
    fn a_client_that_reads_slowly_releases_its_worker_at_the_response_deadline() {
        // 32 MiB at no less than 16 MiB/s: the response has 3 s + 2 s.
        const BODY: usize = 32 << 20;
        let limits = Limits {
            workers: 1,
            queue: 1,
            write_timeout: Duration::from_secs(3),
            min_rate: 16 << 20,
            ..Limits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handler: Handler =
            Arc::new(|_: &Request| Response::bytes(200, "text/plain", vec![b'x'; BODY]));
        let t = std::thread::spawn(move || serve(listener, limits, &s, handler));
        let start = Instant::now();
        // The slow client reads 128 KiB every 100 ms: each write finds room well
        // within its own timeout, and the whole body would take some 25 s.
        let slow = std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
            let mut got = 0usize;
            let mut buf = vec![0u8; 128 << 10];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (got, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        // The only worker is the slow client's; this one waits in the queue.
        let waiting = exchange(port, b"GET /next HTTP/1.1\r\n\r\n");
        let answered = start.elapsed();
        let (got, cut) = slow.join().unwrap();
        assert!(
            waiting.starts_with("HTTP/1.1 200 "),
            "{:?}",
            waiting.lines().next()
        );
        assert!(
            waiting.len() > BODY,
            "the waiting client got its whole answer"
        );
        assert!(got < BODY, "the slow client was cut off ({got} bytes)");
        assert!(
            cut < Duration::from_secs(15) && answered < Duration::from_secs(15),
            "the worker was held {cut:?}; the next client answered after {answered:?}"
        );
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }

    #[test]
    fn a_full_pool_answers_503_at_once() {
        let limits = Limits {
            workers: 1,
            queue: 1,
            head_timeout: Duration::from_secs(30),
            ..Limits::default()
        };
        let (port, stop, t) = start(limits);
        // One holds the worker, one waits in the queue: the third is turned away.
        let hold: Vec<TcpStream> = (0..2)
            .map(|_| {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                s
            })
            .collect();
        // (Nothing is sent: unread bytes would make the close a reset that can
        // overtake the answer.)
        let r = exchange(port, b"");
        assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
        drop(hold);
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }
}
