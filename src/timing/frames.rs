//! The second pass over a camera's files ([`super::scan`] is the first): its frames in
//! presentation order, each with its session, its clock interval and its capture time by the
//! camera's clock, read one fragment at a time again. A frame waits in a reorder window of
//! [`REORDER`] frames (the most an H.264 or H.265 decoder may hold, §A.3.1 and §A.4.2 of each)
//! to come out in presentation order, so memory does not grow with the recording. A thread of
//! its own reads and parses the files (a few batches ahead, [`BATCHES_AHEAD`]), so that
//! reading and what is done with the frames share the cores.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::sync::mpsc;

use super::clock::CaptureFrom;
use super::scan::{FrameRead, Scan, Source};
use crate::ntp;

/// Frames held back to put them in presentation order.
const REORDER: usize = 16;
/// Frames the reading thread sends at a time.
const BATCH: usize = 256;
/// Batches it may be ahead.
const BATCHES_AHEAD: usize = 4;

/// What the reading thread sends.
enum Batch {
    /// The next frames of the current file, in decode order.
    Frames(Vec<FrameRead>),
    /// The file's frames are all sent.
    FileEnd,
}

/// One video frame, with what its timing tells.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameTime {
    /// Which of the recording's files it is in (its index in [`Scan::files`]).
    pub file: usize,
    /// Its number in the recording, in presentation order, from 0.
    pub index: usize,
    /// Its presentation time on the recording's timeline, in seconds from the first file's
    /// start.
    pub pts: f64,
    /// Its presentation time as its file stores it: in the track's timescale (before the
    /// edit list), on the recorder's timeline.
    pub ticks: i64,
    /// A keyframe.
    pub keyframe: bool,
    /// Its RTP timestamp, as sent.
    pub rtp: u32,
    /// When this machine received it, as Unix nanoseconds.
    pub recv_unix_nanos: i128,
    /// When the camera captured it, by the camera's clock, as Unix nanoseconds; `None` without
    /// sender reports to tell.
    pub capture: Option<(i128, CaptureFrom)>,
    /// Which session (index in [`Scan::sessions`]) it was received in: the RTSP connection,
    /// counted from 0 across the recording's files. RTP times restart with each.
    pub session: usize,
    /// Its sample description (1-based index into its file's `stsd`, ISO/IEC 14496-12
    /// §8.5.2): another one where the camera changed its parameter sets.
    pub sample_description: u32,
    /// Its clock interval: how many of the camera's NTP steps came before it in the
    /// recording.
    pub interval: usize,
}

impl FrameTime {
    /// Receive time minus capture time, in seconds: network and camera latency, plus how far
    /// the camera's clock is behind this machine's.
    pub fn latency(&self) -> Option<f64> {
        self.capture
            .map(|(c, _)| (self.recv_unix_nanos - c) as f64 / 1e9)
    }
}

/// A frame waiting in the reorder window, by presentation time and then arrival.
struct Waiting {
    pts: i64,
    seq: u64,
    frame: FrameTime,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.pts, self.seq) == (other.pts, other.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.pts, self.seq).cmp(&(other.pts, other.seq))
    }
}

/// A camera's frames in presentation order; an error ends them.
pub struct Frames<'s> {
    scan: &'s Scan,
    /// The file being read (index into the scan's).
    file: usize,
    /// What the reading thread sends (started at the first frame asked for), and the batch
    /// being taken from.
    from: Option<mpsc::Receiver<anyhow::Result<Batch>>>,
    batch: std::vec::IntoIter<FrameRead>,
    /// The file's runs not yet begun, and frames left in the current one.
    runs: std::slice::Iter<'s, (usize, usize)>,
    left: usize,
    session: Option<usize>,
    /// The frame before's RTP time, as sent and extended.
    last: Option<(u32, i64)>,
    waiting: BinaryHeap<Reverse<Waiting>>,
    /// A file has ended: its frames leave the window before the next's come.
    draining: bool,
    seq: u64,
    index: usize,
    failed: bool,
}

impl Scan {
    /// Its frames, in presentation order, read again from its files.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            scan: self,
            file: 0,
            from: None,
            batch: Vec::new().into_iter(),
            runs: self.runs.first().map_or([].iter(), |r| r.iter()),
            left: 0,
            session: None,
            last: None,
            waiting: BinaryHeap::with_capacity(REORDER + 1),
            draining: false,
            seq: 0,
            index: 0,
            failed: false,
        }
    }
}

/// Reads the timed frames of `sources` in order, `counts[i]` of file `i` (as many as the scan
/// found: a file still being written has more), and sends them in batches.
fn read_all(sources: &[Source], counts: &[usize], to: &mpsc::SyncSender<anyhow::Result<Batch>>) {
    for (source, &count) in sources.iter().zip(counts) {
        match read_file(source, count, to) {
            Ok(true) => {}
            // Nobody reads any more.
            Ok(false) => return,
            Err(e) => {
                let _ = to.send(Err(e));
                return;
            }
        }
    }
}

/// One file's frames, sent; `false` when the receiver has gone.
fn read_file(
    source: &Source,
    count: usize,
    to: &mpsc::SyncSender<anyhow::Result<Batch>>,
) -> anyhow::Result<bool> {
    let mut frames = source.open()?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut n = 0;
    while n < count {
        let Some(frame) = frames.next_frame()? else {
            anyhow::bail!("{} changed while it was read", source.name().display());
        };
        let Some(read) = FrameRead::of(frame) else {
            continue;
        };
        batch.push(read);
        n += 1;
        if batch.len() == BATCH
            && to
                .send(Ok(Batch::Frames(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                ))))
                .is_err()
        {
            return Ok(false);
        }
    }
    if !batch.is_empty() && to.send(Ok(Batch::Frames(batch))).is_err() {
        return Ok(false);
    }
    Ok(to.send(Ok(Batch::FileEnd)).is_ok())
}

impl Frames<'_> {
    /// The next frame in decode order into the window; `false` when the files are done.
    fn read_one(&mut self) -> anyhow::Result<bool> {
        loop {
            if let Some(read) = self.batch.next() {
                while self.left == 0 {
                    let Some(&(frames, session)) = self.runs.next() else {
                        anyhow::bail!(
                            "{} changed while it was read",
                            self.scan.files[self.file].path.display()
                        );
                    };
                    if self.session != Some(session) {
                        self.session = Some(session);
                        self.last = None;
                    }
                    self.left = frames;
                }
                self.left -= 1;
                self.push(read);
                return Ok(true);
            }
            let from = self.from.get_or_insert_with(|| {
                let (to, from) = mpsc::sync_channel(BATCHES_AHEAD);
                let sources = self.scan.sources.clone();
                let counts: Vec<usize> = self.scan.files.iter().map(|f| f.frames).collect();
                std::thread::spawn(move || read_all(&sources, &counts, &to));
                from
            });
            match from.recv() {
                Ok(Ok(Batch::Frames(frames))) => self.batch = frames.into_iter(),
                Ok(Ok(Batch::FileEnd)) => {
                    self.file += 1;
                    self.runs = self
                        .scan
                        .runs
                        .get(self.file)
                        .map_or([].iter(), |r| r.iter());
                    self.left = 0;
                    self.draining = true;
                    return Ok(true);
                }
                Ok(Err(e)) => return Err(e),
                // The thread is done: every file was read.
                Err(_) => return Ok(false),
            }
        }
    }

    fn push(&mut self, read: FrameRead) {
        let session = self.session.unwrap_or(0);
        let rtp = read.timing.rtp;
        let ext = match self.last {
            Some((raw, e)) => e + i64::from(rtp.wrapping_sub(raw) as i32),
            None => i64::from(rtp) + (1 << 32),
        };
        self.last = Some((rtp, ext));
        let s = &self.scan.sessions[session];
        let fit = s.fit.as_ref();
        let frame = FrameTime {
            file: self.file,
            index: 0,
            pts: (read.pts - self.scan.origin as i64) as f64 / f64::from(self.scan.clock_rate),
            ticks: read.pts,
            keyframe: read.keyframe,
            rtp,
            recv_unix_nanos: ntp::to_unix(read.timing.recv),
            capture: fit.map(|f| f.capture(ext)),
            session,
            sample_description: read.sample_description,
            interval: s.steps_before + fit.map_or(0, |f| f.interval(ext)),
        };
        self.seq += 1;
        self.waiting.push(Reverse(Waiting {
            pts: read.pts,
            seq: self.seq,
            frame,
        }));
    }
}

impl Iterator for Frames<'_> {
    type Item = anyhow::Result<FrameTime>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if self.draining && self.waiting.is_empty() {
                self.draining = false;
            }
            if self.waiting.len() > REORDER || self.draining {
                let Reverse(w) = self.waiting.pop()?;
                let mut frame = w.frame;
                frame.index = self.index;
                self.index += 1;
                return Some(Ok(frame));
            }
            match self.read_one() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
