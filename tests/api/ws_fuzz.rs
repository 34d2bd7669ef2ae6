//! Hostile clients against the chat socket: random bytes on the wire, mutated JSON frames
//! (seeded, the seed is printed: rerun with `WS_FUZZ_SEED=<n>`), oversized, binary and
//! fragmented frames, ping floods, a client that writes and never reads, sockets dropped
//! mid-frame and mid-turn, and 2,000 connects. After every phase the server must still answer
//! a normal chat turn, `ws_sessions_active` must return to 0 and the process RSS must return
//! near its baseline (see [`RSS_TOLERANCE_KIB`]).
//!
//! The raw-socket phases speak RFC 6455 by hand ([`RawSocket`]) because a conforming client
//! library cannot send broken frames.

use crate::chat_support::*;
use crate::helpers::TestApp;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// How far RSS may stay above the baseline after a phase. The app runs inside the test
/// process, so this also absorbs what a test running beside this one allocates (the suite runs
/// tests in parallel); it is far below what the phases would leave behind if the server kept
/// what it was sent (the slow reader alone pushes until the socket blocks, capped at
/// [`SLOW_READER_CAP`]) or leaked per connection (2,000 connects).
const RSS_TOLERANCE_KIB: u64 = 96 * 1024;

/// The slow reader fails the test if the server takes this much without pushing back.
const SLOW_READER_CAP: usize = 128 * 1024 * 1024;

// --- a small seeded PRNG (SplitMix64): failures reproduce from the printed seed ---

struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn fuzz_seed() -> u64 {
    let seed = std::env::var("WS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("ws_fuzz seed = {seed} (rerun with WS_FUZZ_SEED={seed})");
    seed
}

// --- RFC 6455 by hand ---

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_PING: u8 = 0x9;

/// A client frame: masked (as clients must), `len` announced as given.
fn frame_with_len(opcode: u8, fin: bool, payload: &[u8], announced: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match announced {
        0..=125 => out.push(0x80 | announced as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(announced as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&announced.to_be_bytes());
        }
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame_with_len(opcode, fin, payload, payload.len() as u64)
}

struct RawSocket {
    stream: TcpStream,
}

impl RawSocket {
    /// Opens a TCP connection and completes the WebSocket upgrade.
    async fn open(app: &TestApp, token: &str) -> RawSocket {
        let mut stream = TcpStream::connect(host_port(app)).await.unwrap();
        let request = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            host_port(app)
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(FRAME_TIMEOUT, stream.read(&mut byte))
                .await
                .expect("the upgrade is answered")
                .unwrap();
            assert_eq!(n, 1, "the server closed during the upgrade");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawSocket { stream }
    }

    async fn write(&mut self, bytes: &[u8]) {
        // The server may already have closed (that is often the point): ignore write errors.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads until the server closes the connection (or `limit` passes); returns what it sent.
    async fn read_to_close(&mut self, limit: Duration) -> Vec<u8> {
        let mut received = Vec::new();
        let _ = tokio::time::timeout(limit, self.stream.read_to_end(&mut received)).await;
        received
    }
}

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// The complete server frames in `bytes`: (opcode, payload). Server frames are unmasked.
fn server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 2 {
        let (len, header) = match rest[1] & 0x7F {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n if n < 126 => (n as usize, 2),
            _ => break,
        };
        if rest.len() < header + len {
            break;
        }
        frames.push((rest[0] & 0x0F, rest[header..header + len].to_vec()));
        rest = &rest[header + len..];
    }
    frames
}

/// The code of the server's close frame in `bytes`, if it sent one.
fn close_code(bytes: &[u8]) -> Option<u16> {
    server_frames(bytes)
        .into_iter()
        .find(|(opcode, payload)| *opcode == 0x8 && payload.len() >= 2)
        .map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
}

// --- what every phase checks afterwards ---

/// Resident set size of this process (the app runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn sessions_active(app: &TestApp) -> f64 {
    app.metric("ws_sessions_active")
        .await
        .expect("the gauge is exported")
}

/// Waits (bounded) for every socket to be gone from the registry.
async fn assert_no_sessions_left(app: &TestApp, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let active = sessions_active(app).await;
        if active == 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{phase}: ws_sessions_active stayed at {active}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One normal turn on a fresh socket: ack, typing, a reply with products.
async fn assert_a_normal_turn_works(app: &TestApp, phase: &str) {
    let mut socket = app.connect("normal-shopper").await;
    send_json(
        &mut socket,
        json!({"type":"message","text":"따뜻한 패딩 추천해 주세요","client_id":phase}),
    )
    .await;
    expect_frame(&mut socket, "ack").await;
    expect_frame(&mut socket, "typing").await;
    let reply = expect_frame(&mut socket, "reply").await;
    assert_eq!(reply["client_id"], phase);
    assert!(!reply["products"].as_array().unwrap().is_empty(), "{reply}");
    socket.close(None).await.unwrap();
}

struct Baseline {
    rss_kib: u64,
}

impl Baseline {
    /// The server answers, no session is left and memory is back near the baseline.
    async fn check(&self, app: &TestApp, phase: &str) {
        assert_a_normal_turn_works(app, phase).await;
        assert_no_sessions_left(app, phase).await;
        // Freed memory can take a moment to come back (actors stop after their sockets).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rss = rss_kib();
        while rss > self.rss_kib + RSS_TOLERANCE_KIB && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rss = rss_kib();
        }
        println!(
            "{phase}: RSS {} MiB (baseline {} MiB, {:+} MiB)",
            rss / 1024,
            self.rss_kib / 1024,
            (rss as i64 - self.rss_kib as i64) / 1024
        );
        assert!(
            rss <= self.rss_kib + RSS_TOLERANCE_KIB,
            "{phase}: RSS {rss} KiB is more than {RSS_TOLERANCE_KIB} KiB above the baseline {} KiB",
            self.rss_kib
        );
    }
}

// --- the phases ---

/// Mutations of valid frames: flipped, dropped, inserted and duplicated bytes, truncation,
/// deep nesting, odd escapes and numbers.
fn mutated_frame(rng: &mut Prng) -> String {
    let conversation = Uuid::new_v4();
    let seeds = [
        json!({"type":"message","text":"패딩 추천","client_id":"c"}).to_string(),
        json!({"type":"resume","conversation_id":conversation}).to_string(),
        json!({"type":"ping"}).to_string(),
        json!({"type":"message","text":"boots","conversation_id":conversation}).to_string(),
    ];
    let mut bytes = seeds[rng.below(seeds.len())].clone().into_bytes();
    match rng.below(9) {
        0 => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(bytes.len());
            bytes.remove(i);
        }
        2 => {
            let i = rng.below(bytes.len());
            let junk = b"{}[]\":,\\ \x00\x7f0e9-";
            bytes.insert(i, junk[rng.below(junk.len())]);
        }
        3 => bytes.truncate(rng.below(bytes.len())),
        4 => {
            let depth = 1 + rng.below(5_000);
            bytes =
                format!("{}{}", "[".repeat(depth), "]".repeat(rng.below(depth + 1))).into_bytes();
        }
        5 => {
            let odd = [
                r#"{"type":"message","text":"\ud800"}"#,
                r#"{"type":"message","text":"a\u0000b"}"#,
                r#"{"type":"message","text":1e999}"#,
                r#"{"type":"message","text":"x","type":"ping"}"#,
                r#"{"type":"resume","conversation_id":"not-a-uuid"}"#,
                r#"{"type":null}"#,
                r#"[{"type":"ping"}]"#,
                r#""ping""#,
                r#"{"type":"message","text":"hi","client_id":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                "",
            ];
            bytes = odd[rng.below(odd.len())].as_bytes().to_vec();
        }
        6 => {
            let len = rng.below(64);
            bytes = rng.bytes(len);
        }
        7 => {
            let i = rng.below(bytes.len());
            let copy = bytes[i..].to_vec();
            bytes.extend_from_slice(&copy);
        }
        _ => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
        }
    }
    // Text frames must be UTF-8 (invalid UTF-8 is the raw phase's business).
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Sends the mutated frames, then a real message, and reads until that message's reply:
/// every frame in between must be a well-formed server frame.
async fn malformed_json_frames(app: &TestApp, rng: &mut Prng, count: usize) {
    let mut socket = app.connect("fuzzer").await;
    for _ in 0..count {
        let text = mutated_frame(rng);
        socket.send(Message::Text(text.into())).await.unwrap();
    }
    let known = ["ack", "typing", "reply", "history", "error", "pong"];
    let mut sentinel_sent = false;
    loop {
        if !sentinel_sent {
            send_json(
                &mut socket,
                json!({"type":"message","text":"패딩 보여줘","client_id":"sentinel"}),
            )
            .await;
            sentinel_sent = true;
        }
        let frame = next_frame(&mut socket).await;
        let kind = frame["type"].as_str().unwrap_or_default();
        assert!(known.contains(&kind), "unexpected frame {frame}");
        if kind == "error" {
            assert!(frame["code"].is_string() && frame["message"].is_string());
            // Bad input is the client's fault: a server-side failure here is a bug.
            assert_ne!(frame["code"], "internal", "{frame}");
        }
        if frame["client_id"] == "sentinel" {
            match kind {
                "reply" => break,
                // The fuzz frames that happened to be valid messages filled the queue: retry
                // once a turn has finished.
                "error" if frame["code"] == "overloaded" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    sentinel_sent = false;
                }
                "ack" | "typing" => {}
                _ => panic!("the sentinel message failed: {frame}"),
            }
        }
    }
    socket.close(None).await.unwrap();
}

/// Random bytes before the upgrade (HTTP garbage) and after it (frame garbage), each on its
/// own connection; the server answers or closes, it never hangs or dies.
async fn random_bytes(app: &TestApp, rng: &mut Prng, connections: usize) {
    let token = app.member_token("random-bytes");
    for n in 0..connections {
        let len = 1 + rng.below(4096);
        let garbage = rng.bytes(len);
        if n % 4 == 0 {
            let mut stream = TcpStream::connect(host_port(app)).await.unwrap();
            let _ = stream.write_all(&garbage).await;
            let mut sink = Vec::new();
            // Garbage that looks like an unfinished request head is kept until the client's
            // request timeout; the client gives up first.
            let _ = tokio::time::timeout(Duration::from_millis(100), stream.read_to_end(&mut sink))
                .await;
        } else {
            let mut socket = RawSocket::open(app, &token).await;
            socket.write(&garbage).await;
            // A frame announcing more than was sent waits for the rest: half the
            // connections hang up, half wait briefly for the server's verdict.
            if n % 2 == 0 {
                socket.read_to_close(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Frames too large for `chat.max_frame_bytes`: announced (no payload follows), real text
/// and real binary. Each gets close code 1009.
async fn huge_frames(app: &TestApp) {
    let token = app.member_token("huge");
    let cases: Vec<Vec<u8>> = vec![
        // Announces 2^62 bytes and sends none of them: a clean 1009.
        frame_with_len(OP_TEXT, true, &[], 1 << 62),
        frame(OP_TEXT, true, "x".repeat(100_000).as_bytes()),
        frame(OP_BINARY, true, &vec![0xAB; 1 << 20]),
    ];
    for (n, bytes) in cases.into_iter().enumerate() {
        let mut socket = RawSocket::open(app, &token).await;
        socket.write(&bytes).await;
        let received = socket.read_to_close(FRAME_TIMEOUT).await;
        let code = close_code(&received);
        if n == 0 {
            assert_eq!(code, Some(1009));
        } else {
            // The server hangs up with most of the frame unread, so the kernel may answer
            // with a reset that discards the close frame; what it never does is accept it.
            assert!(code.is_none() || code == Some(1009), "{code:?}");
            assert!(!String::from_utf8_lossy(&received).contains("pong"));
        }
    }
    // Announces 2^40 bytes and streams them (throttled to about 25 MiB/s): the server must
    // hang up after the header, not wait for the frame while buffering it (actix-http alone
    // would keep everything; the frame guard stops that). After refusing it, actix drains
    // unread request bytes for its client-disconnect timeout (1 s) before closing, so a few
    // MiB get through; 128 MiB (five seconds) would mean the server is still reading.
    let mut socket = RawSocket::open(app, &token).await;
    socket
        .write(&frame_with_len(OP_TEXT, true, &[], 1 << 40))
        .await;
    let chunk = vec![b'x'; 256 * 1024];
    let mut streamed = 0;
    let hung_up = loop {
        match tokio::time::timeout(Duration::from_secs(3), socket.stream.write_all(&chunk)).await {
            Ok(Ok(())) => streamed += chunk.len(),
            Ok(Err(_)) => break true,
            Err(_) => break false, // blocked: the server stopped reading but kept the socket
        }
        if streamed >= 128 * 1024 * 1024 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "oversized streamed frame: the server hung up after {} KiB",
        streamed / 1024
    );
    assert!(
        hung_up,
        "the server kept reading an oversized frame ({streamed} bytes)"
    );

    // Through a real client too: an error frame, then the close.
    let mut socket = app.connect("huge").await;
    socket
        .send(Message::Binary(vec![7u8; 64 * 1024].into()))
        .await
        .unwrap();
    let error = expect_frame(&mut socket, "error").await;
    assert_eq!(error["code"], "frame_too_large");
}

/// Binary frames, fragmented text, a continuation with no start, and control frames that
/// break the rules: refused with error frames (the session lives on) or closed as a
/// protocol error (1002), never accepted.
async fn binary_and_fragmented_frames(app: &TestApp) {
    let token = app.member_token("fragments");

    // Binary and fragmented text: error frames, then the session still answers a ping.
    let mut socket = RawSocket::open(app, &token).await;
    socket.write(&frame(OP_BINARY, true, b"\x00\x01\x02")).await;
    socket.write(&frame(OP_TEXT, false, br#"{"type":"#)).await;
    for _ in 0..50 {
        socket.write(&frame(OP_CONTINUATION, false, b" ")).await;
    }
    socket
        .write(&frame(OP_CONTINUATION, true, br#""ping"}"#))
        .await;
    socket
        .write(&frame(OP_TEXT, true, br#"{"type":"ping"}"#))
        .await;
    socket
        .write(&frame(0x8, true, &1000u16.to_be_bytes()))
        .await;
    let received = socket.read_to_close(FRAME_TIMEOUT).await;
    let text = String::from_utf8_lossy(&received);
    // 1 binary + 52 fragments refused, and the ping after them answered.
    assert_eq!(text.matches("invalid_frame").count(), 53, "{text}");
    assert!(text.contains(r#"{"type":"pong"}"#), "{text}");
    assert_eq!(close_code(&received), Some(1000));

    // Protocol violations: the socket is closed with 1002 (or simply dropped).
    let violations: Vec<Vec<u8>> = vec![
        frame(OP_CONTINUATION, true, b"no start"),
        frame(OP_PING, true, &[0u8; 200]), // control frames are at most 125 bytes
        frame(OP_PING, false, b"fragmented control"),
        frame(0x3, true, b"reserved opcode"),
        frame(OP_TEXT, true, b"\xff\xfe invalid utf-8"),
        {
            let mut unmasked = frame(OP_TEXT, true, br#"{"type":"ping"}"#);
            unmasked[1] &= 0x7F;
            unmasked.drain(2..6);
            unmasked
        },
    ];
    for bytes in violations {
        let mut socket = RawSocket::open(app, &token).await;
        socket.write(&bytes).await;
        let received = socket.read_to_close(FRAME_TIMEOUT).await;
        let frames = server_frames(&received);
        let code = close_code(&received);
        assert!(
            code.is_none() || code == Some(1002),
            "frame {:02x?} got close code {code:?}",
            &bytes[..2]
        );
        assert!(
            frames.iter().all(|(opcode, _)| *opcode == 0x8),
            "frame {:02x?} was answered: {frames:?}",
            &bytes[..2]
        );
    }
}

/// Thousands of transport pings (with payloads) and JSON pings while reading: all answered
/// in order, the session fine afterwards.
async fn ping_flood(app: &TestApp) {
    const PINGS: usize = 5_000;
    let mut socket = app.connect("pinger").await;
    let sender = async {
        // tungstenite's sink flushes per frame; batching keeps the flood a flood.
        for n in 0..PINGS {
            let frame = if n % 2 == 0 {
                Message::Ping(vec![(n % 251) as u8; 125].into())
            } else {
                Message::Text(r#"{"type":"ping"}"#.into())
            };
            socket.feed(frame).await.unwrap();
            if n % 500 == 499 {
                socket.flush().await.unwrap();
            }
        }
        socket.flush().await.unwrap();
        socket
    };
    let mut socket = sender.await;
    let (mut pongs, mut json_pongs) = (0, 0);
    while pongs < PINGS / 2 || json_pongs < PINGS / 2 {
        let message = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
            .await
            .expect("pongs keep coming")
            .unwrap()
            .unwrap();
        match message {
            Message::Pong(payload) => {
                assert_eq!(payload.len(), 125);
                pongs += 1;
            }
            Message::Text(text) => {
                assert_eq!(text.as_str(), r#"{"type":"pong"}"#);
                json_pongs += 1;
            }
            Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_alive(&mut socket).await;
    socket.close(None).await.unwrap();
}

/// A client that writes without ever reading. The server's answers back up (socket buffers,
/// then actix's write buffer), the server stops reading that socket, and the client's writes
/// block: the server holds a bounded amount for it. Meanwhile other sessions are served.
async fn slow_reader(app: &TestApp) -> usize {
    let mut socket = RawSocket::open(app, &app.member_token("slow-reader")).await;
    // A few real messages too, so turns finish while nobody reads their frames.
    let mut batch = Vec::new();
    for n in 0..20 {
        let message =
            json!({"type":"message","text":format!("패딩 {n}"),"client_id":n.to_string()});
        batch.extend(frame(OP_TEXT, true, message.to_string().as_bytes()));
    }
    // Then transport pings: each is answered with a pong as large as itself.
    let ping = frame(OP_PING, true, &[b'p'; 125]);
    let mut pings = Vec::with_capacity(64 * 1024);
    while pings.len() < 64 * 1024 {
        pings.extend_from_slice(&ping);
    }
    let mut written = 0;
    socket.write(&batch).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), socket.stream.write_all(&pings)).await {
            Ok(Ok(())) => written += pings.len(),
            Ok(Err(e)) => panic!("the server dropped a slow reader: {e}"),
            Err(_) => break, // blocked: the server pushes back
        }
        assert!(
            written < SLOW_READER_CAP,
            "the server took {written} bytes from a client that never reads"
        );
    }
    println!(
        "slow reader: the server pushed back after {} KiB",
        written / 1024
    );
    // Others are unaffected while it is stuck.
    assert_a_normal_turn_works(app, "beside-the-slow-reader").await;
    drop(socket); // abrupt: no close frame
    written
}

/// Hang-ups at every awkward moment: mid-request, mid-frame header, mid-payload, and
/// mid-turn. A reply whose socket is gone is still stored.
async fn abrupt_disconnects(app: &TestApp) {
    let token = app.member_token("dropper");
    // Half an upgrade request.
    let mut stream = TcpStream::connect(host_port(app)).await.unwrap();
    stream.write_all(b"GET /ws?token=").await.unwrap();
    drop(stream);
    for partial in [
        vec![0x81],                                            // half a header
        frame_with_len(OP_TEXT, true, &[b'{'; 10], 1_000),     // 10 of 1,000 payload bytes
        frame_with_len(OP_TEXT, true, &[], 200)[..4].to_vec(), // header without its mask
    ] {
        let mut socket = RawSocket::open(app, &token).await;
        socket.write(&partial).await;
        drop(socket);
    }
    // Mid-turn: the socket drops after the ack, the reply is stored anyway.
    let mut socket = app.connect("dropper").await;
    send_json(
        &mut socket,
        json!({"type":"message","text":"등산화 추천해 주세요","client_id":"gone"}),
    )
    .await;
    let ack = expect_frame(&mut socket, "ack").await;
    let conversation: Uuid = ack["conversation_id"].as_str().unwrap().parse().unwrap();
    drop(socket);
    let deadline = Instant::now() + FRAME_TIMEOUT;
    loop {
        let page: Value = app
            .get_as(
                &token,
                &format!("/api/conversations/{conversation}/messages"),
            )
            .await
            .json()
            .await
            .unwrap();
        let roles: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        if roles == ["user", "assistant"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reply was never stored: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 1,000 sequential then 1,000 concurrent (100 at a time) connects; half close politely,
/// half just drop the TCP connection. Returns connects per second.
async fn many_connects(app: &TestApp) -> f64 {
    let token = app.member_token("churn");
    let started = Instant::now();
    for n in 0..1_000 {
        let mut socket = app.try_connect(&token, None).await.expect("connects");
        if n % 2 == 0 {
            socket.close(None).await.unwrap();
        }
    }
    for wave in 0..10 {
        let connects = (0..100).map(|n| {
            let token = token.clone();
            async move {
                let mut socket = app.try_connect(&token, None).await.expect("connects");
                if (wave + n) % 2 == 0 {
                    assert_alive(&mut socket).await;
                    socket.close(None).await.unwrap();
                }
            }
        });
        futures::future::join_all(connects).await;
    }
    let rate = 2_000.0 / started.elapsed().as_secs_f64();
    println!("2,000 connects at {rate:.0}/s");
    rate
}

#[actix_web::test]
async fn hostile_clients_leave_the_chat_server_serving_with_no_sessions_and_no_memory_left() {
    let app = TestApp::builder()
        .settings(|settings| settings.database.max_connections = 10)
        .spawn()
        .await;
    app.seed_catalog().await;
    let mut rng = Prng(fuzz_seed());

    // Warm up (first turn, connection pool, caches), then take the baseline.
    assert_a_normal_turn_works(&app, "warm-up").await;
    assert_a_normal_turn_works(&app, "warm-up").await;
    let baseline = Baseline { rss_kib: rss_kib() };

    malformed_json_frames(&app, &mut rng, 500).await;
    baseline.check(&app, "malformed-json").await;

    random_bytes(&app, &mut rng, 120).await;
    baseline.check(&app, "random-bytes").await;

    huge_frames(&app).await;
    baseline.check(&app, "huge-frames").await;

    binary_and_fragmented_frames(&app).await;
    baseline.check(&app, "binary-and-fragmented").await;

    ping_flood(&app).await;
    baseline.check(&app, "ping-flood").await;

    slow_reader(&app).await;
    baseline.check(&app, "slow-reader").await;

    abrupt_disconnects(&app).await;
    baseline.check(&app, "abrupt-disconnects").await;

    many_connects(&app).await;
    baseline.check(&app, "many-connects").await;
}

#[actix_web::test]
async fn an_idle_client_is_closed_by_the_heartbeat_and_a_responsive_one_is_kept() {
    let app = TestApp::builder()
        .settings(|settings| {
            settings.chat.heartbeat_interval_secs = 1;
            settings.chat.client_timeout_secs = 2;
        })
        .spawn()
        .await;

    let mut idle = app.connect("idle").await;
    let mut responsive = app.connect("responsive").await;
    assert_eq!(sessions_active(&app).await, 2.0);

    // The responsive client reads (tungstenite answers the server's pings) for 5 s; the idle
    // one neither reads nor writes.
    let listening = async {
        let until = Instant::now() + Duration::from_secs(5);
        while let Ok(Some(message)) = tokio::time::timeout_at(until.into(), responsive.next()).await
        {
            assert!(matches!(message.unwrap(), Message::Ping(_)));
        }
    };
    listening.await;
    assert_alive(&mut responsive).await;

    // By now the idle one has been closed with 1001 "going away".
    let mut close = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(FRAME_TIMEOUT, idle.next()).await {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("the idle socket gets a close frame");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "heartbeat timeout");

    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions_active(&app).await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the idle session was not counted out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    responsive.close(None).await.unwrap();
    assert_no_sessions_left(&app, "heartbeat").await;
}
