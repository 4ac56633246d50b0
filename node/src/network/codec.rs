//! Request-response framing: one length-prefixed frame per request and per response.
//!
//! The frame carries opaque bytes; the application decodes them with the protocol crate's
//! per-kind limits. The codec only enforces the overall frame limit, before allocating, and
//! never trusts the declared length for memory: the buffer grows as bytes arrive, so a peer
//! that declares a large frame and sends little costs little.

use std::io;

use futures::prelude::*;
use libp2p::request_response;
use libp2p::StreamProtocol;

/// The request-response protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/starkscale/2/rpc");

/// Largest request or response frame (a chunk plus envelope, or a settlement).
pub const MAX_FRAME: usize = starkscale_protocol::codec::limits::MAX_FRAME + 1024;

/// The most a frame's buffer holds before its bytes arrive (it then grows with them).
const INITIAL_CAPACITY: usize = 64 << 10;

/// Length-prefixed opaque frames with a hard size limit.
#[derive(Clone, Debug, Default)]
pub struct FrameCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut buf = Vec::with_capacity(len.min(INITIAL_CAPACITY));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "frame ended after {} of its declared {len} bytes",
                buf.len()
            ),
        ));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> io::Result<()> {
    if data.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                data.len()
            ),
        ));
    }
    io.write_all(&(data.len() as u32).to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame from its declared length and the bytes that follow.
    fn frame(declared: u32, body: &[u8]) -> Vec<u8> {
        let mut out = declared.to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_short_frames_are_refused() {
        let body = vec![7u8; 200_000];
        let mut io = futures::io::Cursor::new(frame(200_000, &body));
        assert_eq!(read_frame(&mut io).await.ok(), Some(body));
        // Declares the limit, sends 10 bytes and closes: an error, with only what came held.
        let mut io = futures::io::Cursor::new(frame(MAX_FRAME as u32, &[1; 10]));
        let err = read_frame(&mut io).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("after 10 of its declared"),
            "{err}"
        );
        let mut io = futures::io::Cursor::new(frame(MAX_FRAME as u32 + 1, &[]));
        let err = read_frame(&mut io).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
