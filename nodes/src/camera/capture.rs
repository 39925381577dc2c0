//! The capture loop, on its own thread: OpenCV's reads block.

use std::path::Path;
use std::time::{Duration, Instant};

use flowrun_runtime::{Message, Metadata, NodeContext, NodeError, Payload};

use crate::frame::keys;
use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};
use tokio_util::sync::CancellationToken;

use super::source::{read_image, Source};
use super::CameraConfig;
use crate::vision::mat_frame;

pub struct Reader {
    config: CameraConfig,
    source: Source,
    capture: Option<VideoCapture>,
    ctx: NodeContext,
    runtime: tokio::runtime::Handle,
    stop: CancellationToken,
    /// Frames sent so far: the next frame's index.
    index: u64,
}

impl Reader {
    pub fn new(
        config: CameraConfig,
        source: Source,
        capture: Option<VideoCapture>,
        ctx: NodeContext,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let stop = ctx.stop_token();
        Reader {
            config,
            source,
            capture,
            ctx,
            runtime,
            stop,
            index: 0,
        }
    }

    pub fn run(mut self) -> Result<(), NodeError> {
        match self.source.clone() {
            Source::Images(files) => self.run_images(&files),
            _ => self.run_video(),
        }
    }

    fn finished(&self) -> bool {
        self.stop.is_cancelled() || self.config.max_frames.is_some_and(|max| self.index >= max)
    }

    fn run_images(&mut self, files: &[std::path::PathBuf]) -> Result<(), NodeError> {
        let mut pacer = Pacer::new(self.config.fps.map(period));
        loop {
            for file in files {
                if self.finished() {
                    return Ok(());
                }
                match read_image(file) {
                    Ok(mat) => {
                        if !pacer.wait(self) {
                            return Ok(());
                        }
                        self.emit(&mat, Some(file))?;
                    }
                    Err(error) => {
                        self.ctx.metrics.errors.inc();
                        tracing::warn!(node = %self.ctx.id, %error, "skipped an image");
                    }
                }
            }
            if !self.config.repeat || self.index == 0 {
                self.ctx
                    .metrics
                    .set_state(format!("done: {} images", self.index));
                return Ok(());
            }
        }
    }

    fn run_video(&mut self) -> Result<(), NodeError> {
        let mut capture = match self.capture.take() {
            Some(capture) => capture,
            None => self.source.open(self.config.width, self.config.height)?,
        };
        let live = self.source.is_live();
        let file_period = (!live && self.config.realtime)
            .then(|| capture.get(videoio::CAP_PROP_FPS).ok())
            .flatten()
            .filter(|fps| *fps > 0.0 && fps.is_finite())
            .map(period);
        let cap_period = self.config.fps.map(period);
        let mut pacer = Pacer::new(file_period.max(cap_period));
        let mut this_pass = 0u64;
        let mut frame = Mat::default();
        self.ctx.metrics.set_state("reading");
        loop {
            if self.finished() {
                return Ok(());
            }
            let got = match capture.read(&mut frame) {
                Ok(got) => got && !frame.empty(),
                Err(error) => {
                    tracing::warn!(node = %self.ctx.id, %error, "read failed");
                    false
                }
            };
            if !got {
                if live {
                    match self.reopen()? {
                        Some(reopened) => capture = reopened,
                        None => return Ok(()),
                    }
                    continue;
                }
                if self.config.repeat && this_pass > 0 {
                    capture = self.source.open(None, None)?;
                    this_pass = 0;
                    continue;
                }
                self.ctx
                    .metrics
                    .set_state(format!("end of file: {} frames", self.index));
                return Ok(());
            }
            this_pass += 1;
            // A live source keeps producing: frames that come too soon are
            // skipped, not queued. A file waits for its turn instead.
            if live {
                if !pacer.take_if_due() {
                    continue;
                }
            } else if !pacer.wait(self) {
                return Ok(());
            }
            self.emit(&frame, None)?;
        }
    }

    /// Reopens a live source that dropped, with growing waits. `None` when
    /// told to stop meanwhile.
    fn reopen(&mut self) -> Result<Option<VideoCapture>, NodeError> {
        let mut wait = Duration::from_millis(self.config.reconnect_ms);
        let longest = Duration::from_millis(self.config.reconnect_max_ms);
        let mut tries = 0u64;
        loop {
            self.ctx.metrics.errors.inc();
            tries += 1;
            self.ctx.metrics.set_state(format!(
                "reopening {} (try {tries}, in {} ms)",
                self.source,
                wait.as_millis()
            ));
            tracing::warn!(node = %self.ctx.id, source = %self.source, tries, "source dropped; reopening");
            if self.sleep(wait) {
                return Ok(None);
            }
            match self.source.open(self.config.width, self.config.height) {
                Ok(capture) => {
                    self.ctx.metrics.set_state("reading");
                    return Ok(Some(capture));
                }
                Err(error) => tracing::warn!(node = %self.ctx.id, %error, "reopen failed"),
            }
            wait = (wait * 2).min(longest);
        }
    }

    /// Sleeps `duration` unless told to stop first; true when told to stop.
    fn sleep(&self, duration: Duration) -> bool {
        let stop = self.stop.clone();
        self.runtime.block_on(async move {
            tokio::select! {
                _ = tokio::time::sleep(duration) => false,
                _ = stop.cancelled() => true,
            }
        })
    }

    fn emit(&mut self, mat: &Mat, path: Option<&Path>) -> Result<(), NodeError> {
        let frame = mat_frame(mat)?;
        let mut meta = Metadata::new();
        meta.insert(keys::SOURCE.into(), self.ctx.id.clone().into());
        meta.insert("uri".into(), self.source.to_string().into());
        meta.insert(keys::FRAME.into(), self.index.into());
        meta.insert(keys::TIMESTAMP_MS.into(), crate::util::now_ms().into());
        meta.insert("width".into(), u64::from(frame.width).into());
        meta.insert("height".into(), u64::from(frame.height).into());
        if let Some(path) = path {
            meta.insert("path".into(), path.display().to_string().into());
        }
        self.ctx
            .output
            .blocking_send(Message::new(Payload::typed(frame), meta));
        self.index += 1;
        Ok(())
    }
}

fn period(fps: f64) -> Duration {
    Duration::from_secs_f64(1.0 / fps)
}

/// Spaces frames at least `period` apart.
struct Pacer {
    period: Option<Duration>,
    next: Option<Instant>,
}

impl Pacer {
    fn new(period: Option<Duration>) -> Self {
        Pacer { period, next: None }
    }

    /// Whether a frame may go now; if so, the next one is due a period later.
    fn take_if_due(&mut self) -> bool {
        let Some(period) = self.period else {
            return true;
        };
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + period);
        true
    }

    /// Waits until the next frame is due; false when told to stop meanwhile.
    fn wait(&mut self, reader: &Reader) -> bool {
        let Some(period) = self.period else {
            return true;
        };
        let now = Instant::now();
        let due = self.next.unwrap_or(now);
        if due > now && reader.sleep(due - now) {
            return false;
        }
        // Keep the file's own rhythm, unless downstream held us back by more
        // than a frame: then start the rhythm over rather than rush.
        self.next = Some(if now > due + period {
            now + period
        } else {
            due + period
        });
        true
    }
}
