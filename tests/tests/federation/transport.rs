//! Transport abuse: connections that never finish (or never start) the TLS
//! handshake, that never start HTTP/2, or that break HTTP/2 on purpose (rapid
//! reset, stream, header, CONTINUATION, PING and SETTINGS floods) hold no handler, are closed
//! within the configured limits, and do not stop the node from serving its
//! other pinned peers meanwhile.

use std::time::{Duration, Instant};

use enlace_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn stalled_handshakes_are_closed_and_the_node_keeps_serving() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let addr = fed.get("GTM").peer_addr;
    // 30 connections (under the 32 handshakes allowed per source address):
    // half send nothing, half the first bytes of a TLS record and stop.
    let mut stalled = Vec::new();
    for i in 0..30 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
        }
        stalled.push(s);
    }
    // A pinned peer is served at once meanwhile.
    let started = Instant::now();
    let request = fed.search_request("MEX", "GTM", vec![doc_item("doc", "GTM", "A1234567")]);
    let env = fed.sign("MEX", &request);
    fed.exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served in {:?}",
        started.elapsed()
    );
    // A flood from the same address beyond its 32 handshakes is dropped at once.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let dropped_at_once = Instant::now();
    let mut open = 0;
    for mut s in flood {
        let mut buf = [0u8; 8];
        match tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            _ => open += 1,
        }
    }
    // At most the two handshakes still free for this address stay open.
    assert!(open <= 2, "{open} flood connections were not dropped");
    assert!(dropped_at_once.elapsed() < Duration::from_secs(4));
    // Every stalled connection is closed by the node within the handshake timeout (5 s).
    let deadline = Duration::from_secs(9);
    for mut s in stalled {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(deadline, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert_eq!(closed, Ok(true), "a stalled connection stayed open");
    }
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    fed.stop().await;
}

// ---------------------------------------------------------------------------
// HTTP/2 abuse from a pinned peer. The peer speaks raw HTTP/2 frames (RFC
// 9113) over a real pinned TLS connection, so it can break the rules a real
// client library keeps.
// ---------------------------------------------------------------------------

mod raw {
    //! A deliberately misbehaving HTTP/2 client: frames written by hand.

    use std::{sync::Arc, time::Duration};

    use enlace_node::{identity, tls};
    use enlace_tests::Running;
    use tokio::{
        io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf},
        net::TcpStream,
        sync::mpsc,
    };
    use tokio_rustls::client::TlsStream;

    pub(super) const DATA: u8 = 0x0;
    pub(super) const HEADERS: u8 = 0x1;
    pub(super) const RST_STREAM: u8 = 0x3;
    pub(super) const SETTINGS: u8 = 0x4;
    pub(super) const PING: u8 = 0x6;
    pub(super) const GOAWAY: u8 = 0x7;
    pub(super) const WINDOW_UPDATE: u8 = 0x8;
    pub(super) const CONTINUATION: u8 = 0x9;
    pub(super) const END_STREAM: u8 = 0x1;
    pub(super) const END_HEADERS: u8 = 0x4;
    pub(super) const ACK: u8 = 0x1;
    /// RST_STREAM / GOAWAY error codes.
    pub(super) const CANCEL: u32 = 0x8;
    pub(super) const REFUSED_STREAM: u32 = 0x7;
    pub(super) const ENHANCE_YOUR_CALM: u32 = 0xb;

    /// A frame the server sent.
    #[derive(Debug, Clone)]
    pub(super) struct Frame {
        pub(super) ty: u8,
        pub(super) flags: u8,
        pub(super) stream: u32,
        pub(super) payload: Vec<u8>,
    }

    impl Frame {
        /// The error code of a RST_STREAM or GOAWAY frame.
        pub(super) fn error_code(&self) -> Option<u32> {
            let at = match self.ty {
                RST_STREAM => 0,
                GOAWAY => 4,
                _ => return None,
            };
            let b = self.payload.get(at..at + 4)?;
            Some(u32::from_be_bytes(b.try_into().ok()?))
        }
    }

    /// What the server did on the connection, in order; `None` ends it (EOF or error).
    pub(super) type Events = mpsc::UnboundedReceiver<Option<Frame>>;

    /// One frame on the wire.
    pub(super) fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = Vec::with_capacity(9 + payload.len());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(ty);
        out.push(flags);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
    fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(first | v as u8);
            return;
        }
        out.push(first | max as u8);
        v -= max;
        while v >= 128 {
            out.push((v % 128 + 128) as u8);
            v /= 128;
        }
        out.push(v as u8);
    }

    /// A literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2).
    pub(super) fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
        out.push(0x00);
        hpack_int(out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_int(out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }

    /// The header block of a gRPC call to `path`.
    pub(super) fn grpc_headers(path: &str) -> Vec<u8> {
        let mut block = Vec::new();
        for (n, v) in [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "peer.enlace.invalid"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            hpack_literal(&mut block, n, v);
        }
        block
    }

    /// The path of the search method.
    pub(super) const SEARCH: &str = "/enlace.v1.Exchange/Search";

    /// A pinned TLS connection from `from` to `to`, nothing sent on it yet.
    pub(super) async fn tls(
        fed: &Running,
        from: &str,
        to: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let peer = identity::verify_entry(&fed.get(to).entry).expect("entry");
        let config = tls::client_config(fed.get(from).node.tls(), peer.tls_pin)
            .map_err(std::io::Error::other)?;
        let name = rustls::pki_types::ServerName::try_from(peer.node_id.tls_name())
            .map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(fed.get(to).peer_addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Frame> {
        let mut head = [0u8; 9];
        r.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        Ok(Frame {
            ty: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// Opens an HTTP/2 connection (preface, settings exchanged) and returns
    /// its writer and the server's frames as they arrive.
    pub(super) async fn connect(
        fed: &Running,
        from: &str,
        to: &str,
    ) -> (WriteHalf<TlsStream<TcpStream>>, Events) {
        let stream = tls(fed, from, to).await.expect("pinned TLS connection");
        let (mut r, mut w) = tokio::io::split(stream);
        w.write_all(&preface()).await.unwrap();
        // The server's SETTINGS come first; acknowledge them.
        let first = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut r))
            .await
            .expect("server settings in time")
            .expect("server settings");
        assert_eq!(first.ty, SETTINGS, "{first:?}");
        w.write_all(&frame(SETTINGS, ACK, 0, &[])).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move { reader(r, tx).await });
        (w, rx)
    }

    async fn reader(
        mut r: ReadHalf<TlsStream<TcpStream>>,
        tx: mpsc::UnboundedSender<Option<Frame>>,
    ) {
        loop {
            match read_frame(&mut r).await {
                Ok(f) => {
                    if tx.send(Some(f)).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    }

    /// Reads and discards until the node closes the connection (or a read
    /// fails): `Some(bytes read)` when that happened within `within`.
    pub(super) async fn read_until_closed<S: AsyncRead + Unpin>(
        s: &mut S,
        within: Duration,
    ) -> Option<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        let closed = tokio::time::timeout(within, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read += n,
                }
            }
        })
        .await;
        closed.ok().map(|()| read)
    }

    /// The HTTP/2 client preface and an empty SETTINGS frame.
    pub(super) fn preface() -> Vec<u8> {
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        out
    }

    /// Every frame until the connection ends or `within` passes; `true` when it ended.
    pub(super) async fn drain(events: &mut Events, within: Duration) -> (Vec<Frame>, bool) {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Some(f))) => frames.push(f),
                Ok(Some(None)) | Ok(None) => return (frames, true),
                Err(_) => return (frames, false),
            }
        }
    }
}

/// COL's search of GTM: answered, and how long it took.
async fn bystander_search(fed: &Running) -> Duration {
    let started = Instant::now();
    let request = fed.search_request("COL", "GTM", vec![doc_item("doc", "GTM", "A1234567")]);
    let env = fed.sign("COL", &request);
    fed.exchange("COL", "GTM")
        .unwrap()
        .search(env)
        .await
        .expect("the bystander is answered");
    started.elapsed()
}

#[tokio::test]
async fn rapid_reset_is_cut_off_and_other_peers_are_served() {
    let fed = crate::two_peers_of_gtm().await;
    let leaves_before = fed.get("GTM").node.audit().len();
    let (mut w, mut events) = raw::connect(&fed, "MEX", "GTM").await;
    // CVE-2023-44487: open a stream and cancel it at once, 20,000 times.
    let headers = raw::grpc_headers(raw::SEARCH);
    let mut batch = Vec::new();
    let mut sent = 0u32;
    let mut write_failed = false;
    for i in 0..20_000u32 {
        let stream = 2 * i + 1;
        batch.extend(raw::frame(raw::HEADERS, raw::END_HEADERS, stream, &headers));
        batch.extend(raw::frame(
            raw::RST_STREAM,
            0,
            stream,
            &raw::CANCEL.to_be_bytes(),
        ));
        if batch.len() > 64 * 1024 {
            if w.write_all(&batch).await.is_err() {
                write_failed = true;
                break;
            }
            batch.clear();
        }
        sent = i + 1;
    }
    if !write_failed {
        let _ = w.write_all(&batch).await;
    }
    let flooded = Instant::now();
    let (frames, ended) = raw::drain(&mut events, Duration::from_secs(10)).await;
    eprintln!(
        "rapid reset: {sent} streams opened and reset before the write side failed={write_failed}; \
         connection closed {:?} after the last write",
        flooded.elapsed()
    );
    let goaway = frames.iter().find(|f| f.ty == raw::GOAWAY);
    assert_eq!(
        goaway.and_then(|f| f.error_code()),
        Some(raw::ENHANCE_YOUR_CALM),
        "no GOAWAY(ENHANCE_YOUR_CALM) after {sent} reset streams; frames: {:?}",
        frames
            .iter()
            .map(|f| (f.ty, f.stream))
            .take(20)
            .collect::<Vec<_>>()
    );
    assert!(ended, "the abusive connection was not closed");
    // The other peer is served at once, and no handler disclosed anything.
    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    assert_eq!(
        fed.get("GTM").node.audit().len(),
        leaves_before + 1,
        "only the bystander's search is in the log"
    );
    fed.stop().await;
}

#[tokio::test]
async fn a_stream_flood_is_capped_and_stalled_streams_time_out() {
    let mut fed = crate::two_peers_of_gtm().await;
    // A short per-call timeout, so stalled streams end within the test.
    fed.restart("GTM", |dir| set_config(dir, "request_timeout_ms", "1500"))
        .await
        .unwrap();
    let (mut w, mut events) = raw::connect(&fed, "MEX", "GTM").await;
    // 300 calls opened at once, none ever sends its request message.
    let headers = raw::grpc_headers(raw::SEARCH);
    let mut batch = Vec::new();
    for i in 0..300u32 {
        batch.extend(raw::frame(
            raw::HEADERS,
            raw::END_HEADERS,
            2 * i + 1,
            &headers,
        ));
    }
    w.write_all(&batch).await.unwrap();
    let opened = Instant::now();
    // Meanwhile another peer is served at once.
    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    let (frames, _) = raw::drain(&mut events, Duration::from_secs(6)).await;
    let refused: std::collections::BTreeSet<u32> = frames
        .iter()
        .filter(|f| f.ty == raw::RST_STREAM && f.error_code() == Some(raw::REFUSED_STREAM))
        .map(|f| f.stream)
        .collect();
    // Streams that got a response (trailers-only, END_STREAM) or any other reset.
    let ended: std::collections::BTreeSet<u32> = frames
        .iter()
        .filter(|f| {
            (f.ty == raw::HEADERS && f.flags & raw::END_STREAM != 0)
                || (f.ty == raw::RST_STREAM && f.error_code() != Some(raw::REFUSED_STREAM))
        })
        .map(|f| f.stream)
        .collect();
    eprintln!(
        "stream flood: {} of 300 streams refused, {} ended by the per-call timeout within {:?}",
        refused.len(),
        ended.len(),
        opened.elapsed()
    );
    // The 64 streams allowed per connection ran into the per-call timeout;
    // the 236 beyond them were refused.
    assert_eq!(refused.len(), 300 - 64, "refused: {refused:?}");
    assert_eq!(ended.len(), 64, "ended by timeout: {ended:?}");
    assert!(refused.is_disjoint(&ended));
    assert!(
        !frames
            .iter()
            .any(|f| f.ty == raw::DATA && !f.payload.is_empty()),
        "a stalled call got a response body"
    );
    fed.stop().await;
}

#[tokio::test]
async fn header_and_continuation_floods_are_refused() {
    let fed = crate::two_peers_of_gtm().await;
    let leaves_before = fed.get("GTM").node.audit().len();

    // (1) One request whose header block (about 200 KiB, valid HPACK, split
    // over CONTINUATION frames) exceeds the 16 KiB header-list limit.
    let (mut w, mut events) = raw::connect(&fed, "MEX", "GTM").await;
    let mut block = raw::grpc_headers(raw::SEARCH);
    for i in 0..2_000 {
        raw::hpack_literal(&mut block, &format!("x-flood-{i}"), &"v".repeat(90));
    }
    let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut wire = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let flags = if last { raw::END_HEADERS } else { 0 };
        let ty = if i == 0 {
            raw::HEADERS
        } else {
            raw::CONTINUATION
        };
        wire.extend(raw::frame(ty, flags, 1, chunk));
    }
    let _ = w.write_all(&wire).await;
    let (frames, _) = raw::drain(&mut events, Duration::from_secs(3)).await;
    let refused = frames.iter().any(|f| {
        f.stream == 1
            && ((f.ty == raw::HEADERS && f.flags & raw::END_STREAM != 0) || f.ty == raw::RST_STREAM)
    }) || frames.iter().any(|f| f.ty == raw::GOAWAY);
    assert!(
        refused,
        "an oversized header block was not refused: {frames:?}"
    );
    drop(w);

    // (2) CONTINUATION flood (CVE-2024-27316 class): a header block that never
    // ends, 16 KiB frame after 16 KiB frame.
    let (mut w, mut events) = raw::connect(&fed, "MEX", "GTM").await;
    let mut junk = Vec::new();
    while junk.len() < 16 * 1024 - 128 {
        raw::hpack_literal(&mut junk, "x-junk", &"j".repeat(100));
    }
    let started = Instant::now();
    let mut sent = 0usize;
    let mut first = raw::grpc_headers(raw::SEARCH);
    first.extend_from_slice(&junk);
    if w.write_all(&raw::frame(raw::HEADERS, 0, 1, &first))
        .await
        .is_ok()
    {
        // Up to 64 MiB; the node must stop reading long before.
        while sent < 4096 {
            if w.write_all(&raw::frame(raw::CONTINUATION, 0, 1, &junk))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
    }
    let (frames, ended) = raw::drain(&mut events, Duration::from_secs(10)).await;
    eprintln!(
        "CONTINUATION flood: {sent} frames of 16 KiB written before the connection failed, \
         closed after {:?}; server frames: {:?}",
        started.elapsed(),
        frames
            .iter()
            .map(|f| (f.ty, f.error_code()))
            .collect::<Vec<_>>()
    );
    assert!(
        frames.iter().any(|f| f.ty == raw::GOAWAY),
        "no GOAWAY for an endless header block"
    );
    assert!(ended, "the flooding connection was not closed");
    assert!(sent < 4096, "the node kept reading an endless header block");

    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    assert_eq!(fed.get("GTM").node.audit().len(), leaves_before + 1);
    fed.stop().await;
}

#[tokio::test]
async fn silent_connections_are_closed_and_one_peer_cannot_take_every_slot() {
    let fed = crate::two_peers_of_gtm().await;
    // MEX opens pinned TLS connections and never says a word of HTTP/2:
    // 16 (its share) are admitted until the preface deadline, the rest are
    // closed at once.
    let mut silent = Vec::new();
    for _ in 0..24 {
        silent.push(raw::tls(&fed, "MEX", "GTM").await.expect("TLS handshake"));
    }
    let opened = Instant::now();
    // Each connection is watched for half a second, all at once: an admitted
    // one gets the node's HTTP/2 SETTINGS and stays open; a refused one is
    // closed before any HTTP/2 byte.
    let mut watched = tokio::task::JoinSet::new();
    for mut s in silent {
        watched.spawn(async move {
            let closed = raw::read_until_closed(&mut s, Duration::from_millis(500)).await;
            closed.is_none().then_some(s)
        });
    }
    let kept: Vec<_> = watched.join_all().await.into_iter().flatten().collect();
    // 16 per peer; MEX's node may hold one connection of its own already.
    assert!(
        (15..=16).contains(&kept.len()),
        "{} of MEX's silent connections were admitted (limit 16)",
        kept.len()
    );
    // Another peer is not affected.
    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    // The admitted silent ones are closed when the preface deadline (the
    // 5 s handshake timeout) passes.
    for mut s in kept {
        let end = raw::read_until_closed(&mut s, Duration::from_secs(8)).await;
        assert!(end.is_some(), "a silent connection stayed open");
    }
    let waited = opened.elapsed();
    assert!(
        waited > Duration::from_secs(4) && waited < Duration::from_secs(9),
        "silent connections closed after {waited:?}, not at the 5 s deadline"
    );
    // MEX gets its slots back and is served normally.
    let request = fed.search_request("MEX", "GTM", vec![doc_item("doc", "GTM", "A1234567")]);
    let env = fed.sign("MEX", &request);
    fed.exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap();
    fed.stop().await;
}

/// PING and SETTINGS floods (CVE-2019-9512, CVE-2019-9515): the node
/// acknowledges each in turn but holds at most one unsent acknowledgement per
/// connection, so a flooder that does not read its acknowledgements is no
/// longer read from, and is closed at the keepalive deadline; other peers are
/// served throughout and nothing reaches a handler.
#[tokio::test]
async fn ping_and_settings_floods_cost_only_the_flooder() {
    let mut fed = crate::two_peers_of_gtm().await;
    // A 1 s keepalive interval (+ the fixed 20 s timeout) so that the
    // connection which stops reading is closed within the test.
    fed.restart("GTM", |dir| {
        set_config(dir, "keepalive_interval_ms", "1000")
    })
    .await
    .unwrap();
    let leaves_before = fed.get("GTM").node.audit().len();

    // (1) A flooder that reads: 20,000 PINGs and 20,000 SETTINGS, each one
    // acknowledged, the PINGs in order with their payloads.
    const FLOOD: u64 = 20_000;
    let (mut w, mut events) = raw::connect(&fed, "MEX", "GTM").await;
    let mut wire = Vec::new();
    for i in 0..FLOOD {
        wire.extend(raw::frame(raw::PING, 0, 0, &i.to_be_bytes()));
        wire.extend(raw::frame(raw::SETTINGS, 0, 0, &[]));
    }
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), w.write_all(&wire))
        .await
        .expect("the node reads a flooder that reads its acknowledgements")
        .expect("written");
    let (mut pongs, mut settings_acks) = (Vec::new(), 0u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (pongs.len() as u64) < FLOOD || settings_acks < FLOOD {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Some(f))) if f.ty == raw::PING && f.flags & raw::ACK != 0 => {
                pongs.push(u64::from_be_bytes(f.payload[..8].try_into().unwrap()));
            }
            Ok(Some(Some(f))) if f.ty == raw::PING => {
                // The node's own keepalive ping: answer it.
                w.write_all(&raw::frame(raw::PING, raw::ACK, 0, &f.payload))
                    .await
                    .unwrap();
            }
            Ok(Some(Some(f))) if f.ty == raw::SETTINGS && f.flags & raw::ACK != 0 => {
                settings_acks += 1;
            }
            // The node's connection-level flow control.
            Ok(Some(Some(f))) if f.ty == raw::WINDOW_UPDATE && f.stream == 0 => {}
            Ok(Some(Some(f))) => panic!("unexpected frame during the flood: {f:?}"),
            Ok(_) => panic!("the node closed a connection that read its acknowledgements"),
            Err(_) => break,
        }
    }
    eprintln!(
        "control flood (reading): {} PING and {settings_acks} SETTINGS acknowledgements of {FLOOD} each in {:?}",
        pongs.len(),
        started.elapsed()
    );
    assert_eq!(pongs, (0..FLOOD).collect::<Vec<_>>());
    assert_eq!(settings_acks, FLOOD);
    drop(w);

    // (2) A flooder that never reads: the node stops reading it once its
    // acknowledgements cannot be sent.
    let stream = raw::tls(&fed, "MEX", "GTM")
        .await
        .expect("pinned TLS connection");
    let (mut r, mut w) = tokio::io::split(stream);
    w.write_all(&raw::preface()).await.unwrap();
    let chunk: Vec<u8> = (0..4096u64)
        .flat_map(|i| raw::frame(raw::PING, 0, 0, &i.to_be_bytes()))
        .collect();
    let mut written = 0usize;
    let stalled = loop {
        match tokio::time::timeout(Duration::from_secs(2), w.write_all(&chunk)).await {
            Ok(Ok(())) if written < 256 << 20 => written += chunk.len(),
            Ok(Ok(())) => break false,
            Ok(Err(_)) | Err(_) => break true,
        }
    };
    let stalled_at = Instant::now();
    eprintln!(
        "control flood (not reading): {} KiB of PINGs written before the node stopped reading",
        written / 1024
    );
    assert!(
        stalled,
        "the node read 256 MiB of PINGs it could not answer"
    );
    assert!(written < 64 << 20, "the node read {written} bytes of PINGs");
    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    // Still not reading: the node's keepalive ping cannot be answered, so the
    // connection is closed about 21 s after it stalled. Reading only then
    // finds what was already buffered, and the end of the connection.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let reading = Instant::now();
    let closed = raw::read_until_closed(&mut r, Duration::from_secs(3)).await;
    eprintln!(
        "control flood (not reading): closed less than {:?} after the stall; {} KiB were still buffered",
        stalled_at.elapsed() - reading.elapsed(),
        closed.unwrap_or(0) / 1024
    );
    assert!(
        closed.is_some(),
        "the stalled flooder's connection was still open after 25 s"
    );
    let took = bystander_search(&fed).await;
    assert!(took < Duration::from_secs(3), "bystander waited {took:?}");
    assert_eq!(
        fed.get("GTM").node.audit().len(),
        leaves_before + 2,
        "only the bystander's two searches are in the log"
    );
    fed.stop().await;
}
