//! Length-prefixed frames between members: a u32 big-endian body length, then the body. A
//! length over the reader's `frame_bytes_max` is refused from the four header bytes alone,
//! before anything is allocated for the body, so a peer cannot make a member reserve 4 GiB.

use std::fmt;
use std::io::{self, Read};

/// The bytes of a frame's length prefix.
pub(super) const HEADER_BYTES: usize = 4;

/// Why a frame could not be read or built.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix (or the body being built) exceeds the limit.
    TooLong {
        /// The body length claimed or built, in bytes.
        length: u64,
        /// The limit it broke, in bytes.
        frame_bytes_max: u32,
    },
    /// The connection ended in the middle of a frame.
    Truncated,
    /// The connection failed.
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong {
                length,
                frame_bytes_max,
            } => write!(
                f,
                "frame of {length} bytes exceeds frame_bytes_max ({frame_bytes_max})"
            ),
            FrameError::Truncated => write!(f, "connection ended inside a frame"),
            FrameError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads one frame's body. `Ok(None)`: the connection ended cleanly, between frames.
pub(super) fn read_frame(
    reader: &mut impl Read,
    frame_bytes_max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let mut filled = 0;
    while filled < HEADER_BYTES {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    let length = u32::from_be_bytes(header);
    if length > frame_bytes_max {
        return Err(FrameError::TooLong {
            length: u64::from(length),
            frame_bytes_max,
        });
    }
    let mut body = vec![0u8; length as usize];
    reader.read_exact(&mut body).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(error)
        }
    })?;
    Ok(Some(body))
}

/// Appends a frame to `out` whose body `write_body` appends. A body over `frame_bytes_max`
/// is taken back out (the peer would refuse it and close the link) and reported.
pub(super) fn push_frame(
    out: &mut Vec<u8>,
    frame_bytes_max: u32,
    write_body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    write_body(out);
    let length = (out.len() - start - HEADER_BYTES) as u64;
    if length > u64::from(frame_bytes_max) {
        out.truncate(start);
        return Err(FrameError::TooLong {
            length,
            frame_bytes_max,
        });
    }
    let header = (length as u32).to_be_bytes();
    out[start..start + HEADER_BYTES].copy_from_slice(&header);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that fails the test if more than its bytes are asked for at once: proves a
    /// refused length allocated nothing and read nothing past the header.
    struct Exact<'a>(&'a [u8]);

    impl Read for Exact<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            assert!(buffer.len() <= 1 << 20, "a {} byte read", buffer.len());
            let count = buffer.len().min(self.0.len());
            buffer[..count].copy_from_slice(&self.0[..count]);
            self.0 = &self.0[count..];
            Ok(count)
        }
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut bytes = Vec::new();
        push_frame(&mut bytes, 16, |out| out.extend_from_slice(b"first")).unwrap();
        push_frame(&mut bytes, 16, |_| {}).unwrap();
        push_frame(&mut bytes, 16, |out| out.extend_from_slice(&[1; 16])).unwrap();
        assert_eq!(&bytes[..9], b"\0\0\0\x05first");
        let mut reader = Exact(&bytes);
        assert_eq!(read_frame(&mut reader, 16).unwrap().unwrap(), b"first");
        assert_eq!(read_frame(&mut reader, 16).unwrap().unwrap(), b"");
        assert_eq!(read_frame(&mut reader, 16).unwrap().unwrap(), [1; 16]);
        assert!(read_frame(&mut reader, 16).unwrap().is_none());
    }

    #[test]
    fn a_length_over_the_limit_is_refused_from_the_header() {
        let mut reader = Exact(&[0xff, 0xff, 0xff, 0xff]);
        match read_frame(&mut reader, 64 << 20) {
            Err(FrameError::TooLong {
                length,
                frame_bytes_max,
            }) => assert_eq!((length, frame_bytes_max), (u64::from(u32::MAX), 64 << 20)),
            other => panic!("{other:?}"),
        }
        let mut reader = Exact(&[0, 0, 0, 17]);
        assert!(matches!(
            read_frame(&mut reader, 16),
            Err(FrameError::TooLong { length: 17, .. })
        ));
    }

    #[test]
    fn a_frame_cut_short_is_truncated() {
        assert!(matches!(
            read_frame(&mut Exact(&[0, 0]), 16),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut Exact(&[0, 0, 0, 3, 1]), 16),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn a_body_over_the_limit_is_not_pushed() {
        let mut bytes = b"kept".to_vec();
        let refused = push_frame(&mut bytes, 3, |out| out.extend_from_slice(b"four"));
        assert!(matches!(
            refused,
            Err(FrameError::TooLong {
                length: 4,
                frame_bytes_max: 3
            })
        ));
        assert_eq!(bytes, b"kept");
    }
}
