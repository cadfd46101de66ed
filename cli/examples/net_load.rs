//! Load generator for `deploy/bench/discovery.sh` and `publish.sh`, run inside a
//! container's (or a client host's) network namespace with `nsenter`, so it sees exactly
//! what that namespace sees. Std only: it must not resolve names itself.
//!
//! - `dns SERVER NAME COUNT`: COUNT A queries for NAME to SERVER:53, one at a time over UDP;
//!   prints `qps=<n> p50_ms=<n> p99_ms=<n> errors=<n>`.
//! - `connect IP:PORT COUNT`: COUNT TCP connections opened and closed one after another,
//!   each closed with a reset (no TIME_WAIT); prints `cps=<n> p99_ms=<n> errors=<n>`.
//! - `listen PORT`: accepts and closes connections until killed, so the connection rate
//!   measures the network path, not a forking server's accept loop.
//! - `request IP:PORT COUNT`: COUNT HTTP/1.0 requests one after another, each on a new
//!   connection that the client resets once it has the answer; prints `rps=<n>
//!   p50_ms=<n> p99_ms=<n> errors=<n>`.
//! - `serve PORT`: answers each request with a short HTTP response, one thread, until
//!   killed.
//! - `poll IP:PORT INTERVAL_MS STOPFILE`: one HTTP/1.0 request every INTERVAL_MS, each on
//!   a new connection, until the file STOPFILE exists; prints `sent=<n> failed=<n>`.
//!
//! Prints figures, asserts nothing.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(1);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["dns", server, name, count] => count.parse().ok().map(|n| dns(server, name, n)),
        ["connect", target, count] => count.parse().ok().map(|n| connect(target, n)),
        ["listen", port] => port.parse().ok().map(listen),
        ["request", target, count] => count.parse().ok().map(|n| request(target, n)),
        ["serve", port] => port.parse().ok().map(serve),
        ["poll", target, interval, stop] => interval.parse().ok().map(|ms| poll(target, ms, stop)),
        _ => None,
    };
    if parsed.is_none() {
        eprintln!(
            "usage: net_load dns SERVER NAME COUNT | connect IP:PORT COUNT | listen PORT | request IP:PORT COUNT | serve PORT | poll IP:PORT INTERVAL_MS STOPFILE"
        );
        std::process::exit(2);
    }
}

/// A one-question A query for `name` with id `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

/// The q-quantile of sorted latencies, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn dns(server: &str, name: &str, count: u32) {
    let Ok(server) = format!("{server}:53").parse::<SocketAddr>() else {
        eprintln!("bad server address {server}");
        std::process::exit(2);
    };
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind a UDP socket");
    socket.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
    socket.connect(server).expect("connect the UDP socket");
    let (mut latencies, mut errors) = (Vec::new(), 0u32);
    let mut buf = [0u8; 1500];
    let start = Instant::now();
    for i in 0..count {
        let id = i as u16;
        let sent = Instant::now();
        let answered = socket.send(&query(id, name)).is_ok()
            && loop {
                match socket.recv(&mut buf) {
                    // A late answer to an earlier query: keep waiting for ours.
                    Ok(len) if len >= 4 && buf[..2] != id.to_be_bytes() => continue,
                    // Ours, with rcode NOERROR.
                    Ok(len) => break len >= 4 && buf[3] & 0x0f == 0,
                    Err(_) => break false,
                }
            };
        if answered {
            latencies.push(sent.elapsed());
        } else {
            errors += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "qps={:.0} p50_ms={:.3} p99_ms={:.3} errors={errors}",
        latencies.len() as f64 / elapsed,
        quantile_ms(&latencies, 0.50),
        quantile_ms(&latencies, 0.99)
    );
}

/// COUNT runs of `op` against TARGET one after another: the sorted latencies of those that
/// succeeded, the failures and the seconds it all took.
fn timed(
    target: &str,
    count: u32,
    op: impl Fn(&SocketAddr) -> std::io::Result<()>,
) -> (Vec<Duration>, u32, f64) {
    let Ok(target) = target.parse::<SocketAddr>() else {
        eprintln!("bad target {target}");
        std::process::exit(2);
    };
    let (mut latencies, mut errors) = (Vec::new(), 0u32);
    let start = Instant::now();
    for _ in 0..count {
        let began = Instant::now();
        match op(&target) {
            Ok(()) => latencies.push(began.elapsed()),
            Err(_) => errors += 1,
        }
    }
    latencies.sort();
    (latencies, errors, start.elapsed().as_secs_f64())
}

/// A new connection that ends with a reset (SO_LINGER 0) when dropped, so no side keeps
/// it in TIME_WAIT. An orderly close left each connection's port in TIME_WAIT on the
/// client, and past ~15,000 of them to one address every `connect` searched the port
/// range for a free one (~1.5 ms), whatever the path; letting the server close first
/// moved them to the server, which then set the pace.
fn connect_resetting(target: &SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let stream = TcpStream::connect_timeout(target, TIMEOUT)?;
    let reset_on_close = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&stream, Linger, &reset_on_close)?;
    Ok(stream)
}

fn connect(target: &str, count: u32) {
    let (latencies, errors, elapsed) = timed(target, count, |t| connect_resetting(t).map(drop));
    println!(
        "cps={:.0} p99_ms={:.3} errors={errors}",
        latencies.len() as f64 / elapsed,
        quantile_ms(&latencies, 0.99)
    );
}

/// A listener with the kernel's largest accept queue: std's 128 overflowed under
/// `connect` at ~40,000 connections/s whenever this one thread was off the CPU for a few
/// milliseconds, and each dropped SYN cost the client its whole 1 s timeout.
fn bind(port: u16) -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(("0.0.0.0", port)).and_then(|listener| {
        nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::MAXCONN)?;
        Ok(listener)
    });
    match listener {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    }
}

fn listen(port: u16) {
    for stream in bind(port).incoming() {
        drop(stream);
    }
}

/// One request on a new connection: connect, send, read the whole answer.
fn one_request(target: &SocketAddr) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut stream = connect_resetting(target)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    // busybox httpd answers HTTP/1.1, net_load's own server HTTP/1.0.
    if answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not a 200 answer"))
    }
}

fn request(target: &str, count: u32) {
    let (latencies, errors, elapsed) = timed(target, count, one_request);
    println!(
        "rps={:.0} p50_ms={:.3} p99_ms={:.3} errors={errors}",
        latencies.len() as f64 / elapsed,
        quantile_ms(&latencies, 0.50),
        quantile_ms(&latencies, 0.99)
    );
}

fn poll(target: &str, interval_ms: u64, stop: &str) {
    let Ok(addr) = target.parse::<SocketAddr>() else {
        eprintln!("bad target {target}");
        std::process::exit(2);
    };
    let interval = Duration::from_millis(interval_ms);
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut next = Instant::now();
    while !std::path::Path::new(stop).exists() {
        sent += 1;
        if let Err(e) = one_request(&addr) {
            failed += 1;
            eprintln!("request {sent} failed: {e}");
        }
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!("sent={sent} failed={failed}");
}

fn serve(port: u16) {
    use std::io::{Read, Write};
    const ANSWER: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    for stream in bind(port).incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 512];
        if stream.read(&mut request).is_ok() {
            let _ = stream.write_all(ANSWER);
        }
    }
}
