//! A plugin's WASI stdout and stderr, written straight into the task's [`OutputSink`].

use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream as WasiOutput, Pollable, StreamResult};

use crate::exec::{OutputSink, OutputStream};

/// A WASI output stream that forwards every write to one stream of a task's log.
#[derive(Clone)]
pub struct SinkStdout {
    sink: Arc<dyn OutputSink>,
    stream: OutputStream,
}

impl SinkStdout {
    /// Writes into `stream` of `sink`.
    pub fn new(sink: Arc<dyn OutputSink>, stream: OutputStream) -> SinkStdout {
        SinkStdout { sink, stream }
    }
}

impl IsTerminal for SinkStdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStdout {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncSink(self.clone()))
    }

    fn p2_stream(&self) -> Box<dyn WasiOutput> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SinkStdout {
    async fn ready(&mut self) {}
}

impl WasiOutput for SinkStdout {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

struct AsyncSink(SinkStdout);

impl tokio::io::AsyncWrite for AsyncSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.sink.write(self.0.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
