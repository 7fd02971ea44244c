//! One session's TCP connection: the connect handshake, reply frames cut out of the byte
//! stream, single request-reply calls (for setup steps and closing), and how it can fail.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zookeeper_core::proto::wire::{
    self, ConnectRequest, ConnectResponse, ReplyHeader, Request, RequestFrame, XID_NOTIFICATION,
    XID_PING,
};
use zookeeper_core::proto::OpCode;

/// Largest reply frame accepted, in bytes; a longer length prefix means the stream is not
/// ZooKeeper's (the repository's client draws the same line).
pub const REPLY_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
/// How long connecting and the handshake may take.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP connect, or the handshake's I/O, failed.
    Io(std::io::Error),
    /// No answer within `CONNECT_TIMEOUT_MS`.
    TimedOut,
    /// The server answered the handshake with no session (it refused us).
    Refused,
    /// The handshake answer did not decode.
    BadHandshake(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(error) => write!(f, "{error}"),
            ConnectError::TimedOut => {
                write!(f, "no handshake answer within {CONNECT_TIMEOUT_MS} ms")
            }
            ConnectError::Refused => f.write_str("the server refused the session"),
            ConnectError::BadHandshake(why) => write!(f, "bad handshake answer: {why}"),
        }
    }
}

/// Why an open connection stopped working: reported, never retried (a benchmark that
/// reconnected quietly would hide the very thing it measures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// The server closed the connection.
    Closed,
    /// Reading or writing failed.
    Io(String),
    /// Nothing arrived for this long (2/3 of the session timeout, as ZooKeeper's client
    /// decides), pings included.
    Silent(Duration),
    /// The server sent something this client cannot take.
    Protocol(String),
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Closed => f.write_str("the server closed the connection"),
            LostReason::Io(error) => write!(f, "{error}"),
            LostReason::Silent(silence) => {
                write!(
                    f,
                    "nothing from the server for {:.1} s",
                    silence.as_secs_f64()
                )
            }
            LostReason::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl From<std::io::Error> for LostReason {
    fn from(error: std::io::Error) -> LostReason {
        LostReason::Io(error.to_string())
    }
}

/// Bytes read from a connection, cut into reply frames.
#[derive(Debug)]
pub struct FrameBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameBuffer {
    fn default() -> FrameBuffer {
        FrameBuffer {
            bytes: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
        }
    }
}

impl FrameBuffer {
    /// Reads what the socket has (at least one byte, or 0 at end of stream). Cancel safe: a
    /// read abandoned before it completes has taken nothing from the socket.
    pub async fn fill(&mut self, reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.bytes.len() - self.end < READ_CHUNK_BYTES {
            // Keep the unread part at the front, and make room for a whole frame that is
            // longer than the buffer.
            self.bytes.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.bytes.len() - self.end < READ_CHUNK_BYTES {
            self.bytes.resize(self.end + READ_CHUNK_BYTES, 0);
        }
        let read = reader.read(&mut self.bytes[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// The next whole frame's payload (after its length prefix), if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, LostReason> {
        let buffered = &self.bytes[self.start..self.end];
        let Some(prefix) = buffered.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = i32::from_be_bytes(*prefix);
        let length = usize::try_from(length)
            .ok()
            .filter(|&length| length <= REPLY_FRAME_BYTES_MAX)
            .ok_or_else(|| LostReason::Protocol(format!("reply frame length {length}")))?;
        if buffered.len() < 4 + length {
            if self.bytes.len() < 4 + length {
                // Grow once to the whole frame, so the next fills complete it.
                self.bytes.resize(4 + length + READ_CHUNK_BYTES, 0);
            }
            return Ok(None);
        }
        let payload = self.start + 4..self.start + 4 + length;
        self.start = payload.end;
        Ok(Some(&self.bytes[payload]))
    }
}

/// A session's open connection.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// Replies read and not yet handled.
    pub frames: FrameBuffer,
    /// The server, as given.
    pub host: String,
    /// The session the server gave.
    pub session_id: i64,
    /// The session timeout the server agreed to.
    pub timeout: Duration,
    /// The last xid used; xids only go up (wrapping to 1), so a late reply cannot be mistaken.
    pub last_xid: i32,
}

impl Connection {
    /// Opens a TCP connection to `host` and a new session on it.
    pub async fn open(host: &str, session_timeout: Duration) -> Result<Connection, ConnectError> {
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        tokio::time::timeout(timeout, Connection::handshake(host, session_timeout))
            .await
            .map_err(|_| ConnectError::TimedOut)?
    }

    async fn handshake(host: &str, session_timeout: Duration) -> Result<Connection, ConnectError> {
        let mut stream = TcpStream::connect(host).await.map_err(ConnectError::Io)?;
        // Requests go out as soon as they are written; batching is the writer's job.
        stream.set_nodelay(true).map_err(ConnectError::Io)?;
        let request = ConnectRequest {
            protocol_version: wire::PROTOCOL_VERSION,
            last_zxid_seen: 0,
            timeout_ms: i32::try_from(session_timeout.as_millis()).unwrap_or(i32::MAX),
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        };
        stream
            .write_all(&request.encode_frame())
            .await
            .map_err(ConnectError::Io)?;
        let mut frames = FrameBuffer::default();
        let answer = loop {
            if let Some(payload) = frames
                .next_frame()
                .map_err(|why| ConnectError::BadHandshake(why.to_string()))?
            {
                break ConnectResponse::decode(payload)
                    .map_err(|error| ConnectError::BadHandshake(format!("{error:?}")))?;
            }
            if frames.fill(&mut stream).await.map_err(ConnectError::Io)? == 0 {
                return Err(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        };
        if answer.session_id == 0 || answer.timeout_ms <= 0 {
            return Err(ConnectError::Refused);
        }
        Ok(Connection {
            stream,
            frames,
            host: host.to_string(),
            session_id: answer.session_id,
            timeout: Duration::from_millis(answer.timeout_ms.unsigned_abs().into()),
            last_xid: 0,
        })
    }

    /// The next xid: positive, since negative ones are the protocol's own (pings,
    /// notifications, auth).
    pub fn next_xid(&mut self) -> i32 {
        next_xid(&mut self.last_xid)
    }

    /// How long silence may last before the server counts as gone: 2/3 of the session
    /// timeout, as ZooKeeper's client decides.
    pub fn silence_max(&self) -> Duration {
        self.timeout * 2 / 3
    }

    /// How long the writer may stay quiet before it pings: 1/3 of the session timeout.
    pub fn ping_interval(&self) -> Duration {
        self.timeout / 3
    }

    /// Sends one request and waits for its reply (pings and notifications in between are
    /// skipped); returns the reply's header and body. For the few one-off steps around a run
    /// (creating the prefix, listing it, closing the session); `session::run_phase` pipelines.
    pub async fn call(
        &mut self,
        opcode: OpCode,
        request: Request,
    ) -> Result<(ReplyHeader, Vec<u8>), LostReason> {
        let xid = self.next_xid();
        let frame = wire::encode_request(&RequestFrame {
            xid,
            opcode: opcode.code(),
            multi_opcodes: Vec::new(),
            request,
        });
        self.stream.write_all(&frame).await?;
        let silence_max = self.silence_max();
        loop {
            while let Some(payload) = self.frames.next_frame()? {
                let (header, body) = wire::decode_reply_header(payload)
                    .map_err(|error| LostReason::Protocol(format!("reply header: {error:?}")))?;
                if header.xid == xid {
                    return Ok((header, body.to_vec()));
                }
                if header.xid != XID_PING && header.xid != XID_NOTIFICATION {
                    return Err(LostReason::Protocol(format!(
                        "reply to xid {} while waiting for {xid}",
                        header.xid
                    )));
                }
            }
            let read = tokio::time::timeout(silence_max, self.frames.fill(&mut self.stream))
                .await
                .map_err(|_| LostReason::Silent(silence_max))??;
            if read == 0 {
                return Err(LostReason::Closed);
            }
        }
    }
}

/// The xid after `last` (stored back into it): positive, wrapping from i32::MAX to 1.
pub fn next_xid(last: &mut i32) -> i32 {
    *last = if *last == i32::MAX { 1 } else { *last + 1 };
    *last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[tokio::test]
    async fn frames_are_cut_across_reads_of_any_size() {
        let big = vec![7u8; 200_000];
        let mut stream = frame(b"one");
        stream.extend(frame(&big));
        stream.extend(frame(b""));
        stream.extend(frame(b"last"));
        // Feed it 1,000 bytes at a time, as a slow socket would.
        let (mut client, mut server) = tokio::io::duplex(1_000);
        let writer = tokio::spawn(async move { server.write_all(&stream).await });
        let mut frames = FrameBuffer::default();
        let mut seen: Vec<Vec<u8>> = vec![];
        while seen.len() < 4 {
            while let Some(payload) = frames.next_frame().unwrap() {
                seen.push(payload.to_vec());
            }
            if seen.len() < 4 {
                assert!(frames.fill(&mut client).await.unwrap() > 0);
            }
        }
        writer.await.unwrap().unwrap();
        assert_eq!(seen, [b"one".to_vec(), big, vec![], b"last".to_vec()]);
    }

    #[test]
    fn a_length_out_of_range_is_a_protocol_error() {
        for length in [-1i32, (REPLY_FRAME_BYTES_MAX + 1) as i32] {
            let mut frames = FrameBuffer::default();
            frames.bytes[..4].copy_from_slice(&length.to_be_bytes());
            frames.end = 4;
            assert!(matches!(frames.next_frame(), Err(LostReason::Protocol(_))));
        }
    }
}
