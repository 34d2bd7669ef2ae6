//! [`FrameSizeGuard`]: refuses an oversized WebSocket frame as soon as its header arrives.
//!
//! actix-http's frame parser compares a frame's length with the limit only once the whole
//! frame is buffered, so a client announcing a 2^62-byte frame and then streaming makes the
//! server buffer everything it sends. This guard sits between the request payload and the
//! parser and follows the frame headers in the byte stream. When a masked client frame
//! announces more than the limit, it hands the parser a stand-in: the same header announcing
//! `limit + 1` bytes, followed by that many filler bytes. The parser then refuses it at once
//! (`ProtocolError::Overflow`, which the session answers with `frame_too_large` and close code
//! 1009) and the guard ends the stream, so the rest of the frame is never read.

use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct FrameSizeGuard<S> {
    inner: S,
    max_payload: usize,
    /// Payload bytes of the current frame still to pass on.
    payload_left: u64,
    /// The header being read (2 to 14 bytes).
    header: Vec<u8>,
    /// An oversized frame was replaced: nothing more is read.
    tripped: bool,
}

impl<S> FrameSizeGuard<S> {
    pub fn new(inner: S, max_payload: usize) -> Self {
        Self {
            inner,
            max_payload,
            payload_left: 0,
            header: Vec::with_capacity(14),
            tripped: false,
        }
    }

    /// Passes `chunk` on, replacing an oversized frame's header (and ending there).
    fn filter(&mut self, mut chunk: Bytes) -> BytesMut {
        let mut out = BytesMut::with_capacity(chunk.len());
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let n = chunk
                    .len()
                    .min(usize::try_from(self.payload_left).unwrap_or(usize::MAX));
                out.extend_from_slice(&chunk[..n]);
                chunk = chunk.slice(n..);
                self.payload_left -= n as u64;
                continue;
            }
            let wanted = header_len(&self.header).unwrap_or(2);
            let n = (wanted - self.header.len()).min(chunk.len());
            self.header.extend_from_slice(&chunk[..n]);
            chunk = chunk.slice(n..);
            if header_len(&self.header) != Some(self.header.len()) {
                continue; // the length bytes just arrived, or the header is still partial
            }
            let length = announced_len(&self.header);
            let masked = self.header[1] & 0x80 != 0;
            if masked && length > self.max_payload as u64 {
                out.extend_from_slice(&self.stand_in());
                self.tripped = true;
                return out;
            }
            out.extend_from_slice(&self.header);
            self.header.clear();
            self.payload_left = length;
        }
        out
    }

    /// The oversized frame's header announcing `max_payload + 1` bytes, and those bytes.
    fn stand_in(&self) -> Vec<u8> {
        let length = self.max_payload + 1;
        let mut frame = vec![self.header[0]];
        if length <= usize::from(u16::MAX) {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(length as u64).to_be_bytes());
        }
        let mask = &self.header[self.header.len() - 4..];
        frame.extend_from_slice(mask);
        frame.resize(frame.len() + length, 0);
        frame
    }
}

/// The full length of a frame header once its first two bytes are known.
fn header_len(header: &[u8]) -> Option<usize> {
    let second = *header.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

/// The payload length a complete header announces.
fn announced_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().expect("8 length bytes")),
        n => u64::from(n),
    }
}

impl<S> Stream for FrameSizeGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.tripped {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = this.filter(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn masked_frame(payload_len: u64, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x81];
        match payload_len {
            0..=125 => frame.push(0x80 | payload_len as u8),
            126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&payload_len.to_be_bytes());
            }
        }
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend_from_slice(payload);
        frame
    }

    /// Feeds `bytes` in chunks of `chunk` bytes and collects what the guard passes on.
    async fn guarded(bytes: Vec<u8>, chunk: usize, max: usize) -> Vec<u8> {
        let chunks: Vec<Result<Bytes, PayloadError>> = bytes
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let guard = FrameSizeGuard::new(futures::stream::iter(chunks), max);
        guard
            .map(|item| item.unwrap().to_vec())
            .collect::<Vec<_>>()
            .await
            .concat()
    }

    #[actix_web::test]
    async fn frames_within_the_limit_pass_unchanged_however_they_are_split() {
        let mut bytes = masked_frame(5, b"hello");
        bytes.extend(masked_frame(300, &[7; 300]));
        bytes.extend(masked_frame(0, b""));
        for chunk in [1, 2, 3, 7, 64, 1024] {
            assert_eq!(
                guarded(bytes.clone(), chunk, 300).await,
                bytes,
                "chunk {chunk}"
            );
        }
    }

    #[actix_web::test]
    async fn an_oversized_header_is_replaced_and_the_rest_is_never_read() {
        let mut bytes = masked_frame(5, b"first");
        let first_len = bytes.len();
        bytes.extend(masked_frame(1 << 62, &[9; 1000]));
        for chunk in [1, 3, 100] {
            let out = guarded(bytes.clone(), chunk, 16).await;
            assert_eq!(&out[..first_len], &bytes[..first_len]);
            let stand_in = &out[first_len..];
            // 0x81, 126, length 17, the client's mask, 17 filler bytes.
            assert_eq!(&stand_in[..8], &[0x81, 0x80 | 126, 0, 17, 1, 2, 3, 4]);
            assert_eq!(stand_in.len(), 8 + 17);
        }
    }

    #[actix_web::test]
    async fn unmasked_frames_are_left_to_the_parser_to_refuse() {
        let bytes = vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(guarded(bytes.clone(), 4, 16).await, bytes);
    }
}
