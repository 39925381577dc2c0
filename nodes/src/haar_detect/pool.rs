//! Detection on worker threads, with the frames put back in their order.
//!
//! Each worker owns a detector. The node's task numbers the frames it takes,
//! hands them to whichever worker is free, and sends results on only in
//! number order, holding back any that finish early. At most two frames per
//! worker are in flight, so a slow detector backs the input up instead of
//! queueing without bound.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};

use flowrun_runtime::{Message, NodeContext, NodeError};

use crate::frame::{Frame, Rect};
use crate::vision::VisionError;

use super::detector::Detector;

struct Job {
    seq: u64,
    message: Message,
}

struct Done {
    seq: u64,
    message: Message,
    boxes: Result<Vec<Rect>, DetectError>,
}

/// Why a frame got no detections; the message is rejected with it.
#[derive(Debug, thiserror::Error)]
enum DetectError {
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error("the detector panicked")]
    Panicked,
    #[error("haar_detect takes decoded frames, not bytes")]
    NotAFrame,
}

/// What the node does besides detecting.
pub struct Options {
    pub emit_empty: bool,
    /// Detect on every Nth frame taken; the others are acknowledged and
    /// dropped here, so the workers never see them.
    pub detect_every: u64,
}

pub async fn run(
    detectors: Vec<Detector>,
    options: Options,
    mut ctx: NodeContext,
) -> Result<(), NodeError> {
    let emit_empty = options.emit_empty;
    let workers = detectors.len();
    if workers > 1 {
        // Frames are already spread over the cores: OpenCV's own parallel
        // loops inside each detection would only fight the workers for them.
        opencv::core::set_num_threads(1)?;
    }
    let (jobs, job_queue) = mpsc::channel::<Job>();
    let job_queue = Arc::new(Mutex::new(job_queue));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let threads: Vec<_> = detectors
        .into_iter()
        .enumerate()
        .map(|(i, detector)| {
            let queue = job_queue.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("{}-{i}", ctx.id))
                .spawn(move || work(detector, &queue, &done))
        })
        .collect::<Result<_, _>>()?;
    drop(done_tx);

    let limit = 2 * workers as u64;
    let (mut taken, mut sent) = (0u64, 0u64);
    let mut early: BTreeMap<u64, Done> = BTreeMap::new();
    let mut input_open = true;
    let (mut arrived, mut skipped) = (0u64, 0u64);
    let outcome = loop {
        if !input_open && sent == taken {
            break Ok(());
        }
        tokio::select! {
            done = done_rx.recv() => {
                let Some(done) = done else {
                    break Err("every detection worker ended".into());
                };
                early.insert(done.seq, done);
                while let Some(done) = early.remove(&sent) {
                    sent += 1;
                    finish(done, emit_empty, &ctx).await;
                }
            }
            message = ctx.input.recv(), if input_open && taken - sent < limit => match message {
                Some(message) => {
                    arrived += 1;
                    if (arrived - 1) % options.detect_every != 0 {
                        // Skipped by `detect_every`: filtered, not lost.
                        skipped += 1;
                        message.ack();
                        continue;
                    }
                    if jobs.send(Job { seq: taken, message }).is_err() {
                        break Err("every detection worker ended".into());
                    }
                    taken += 1;
                }
                None => input_open = false,
            },
        }
    };
    drop(jobs);
    for thread in threads {
        // A worker ends as soon as the queue closes; joining cannot wait on a frame.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    ctx.metrics.set_state(if skipped > 0 {
        format!("{sent} frames, {skipped} skipped")
    } else {
        format!("{sent} frames")
    });
    outcome
}

fn work(
    mut detector: Detector,
    queue: &Mutex<mpsc::Receiver<Job>>,
    done: &tokio::sync::mpsc::UnboundedSender<Done>,
) {
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let boxes = match job.message.payload.get::<Frame>() {
            Some(frame) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| detector.detect(frame))) {
                    Ok(result) => result.map_err(DetectError::from),
                    Err(_) => Err(DetectError::Panicked),
                }
            }
            None => Err(DetectError::NotAFrame),
        };
        let finished = Done {
            seq: job.seq,
            message: job.message,
            boxes,
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}

async fn finish(done: Done, emit_empty: bool, ctx: &NodeContext) {
    let mut message = done.message;
    match done.boxes {
        Ok(boxes) => {
            let found = boxes.len();
            // A frame shared with another branch (a preview) is copied
            // here, its pixels still shared: the other branch's is unchanged.
            if let Some(frame) = message.payload.get_mut::<Frame>() {
                frame.detections = boxes;
            }
            message.meta.insert("faces".into(), (found as u64).into());
            if found == 0 && !emit_empty {
                // Deliberately filtered out: that is a delivery, not a loss.
                message.ack();
            } else {
                ctx.output.send(message).await;
            }
        }
        Err(error) => {
            ctx.metrics.errors.inc();
            tracing::warn!(node = %ctx.id, %error, "detection failed");
            message.reject(error.to_string());
        }
    }
}
