//! Fragmented MP4 muxing (ISO/IEC 14496-12, "ISO BMFF").
//!
//! # File layout
//!
//! ```text
//! ftyp                      iso5, iso6, mp41
//! moov                      track headers and sample descriptions, no samples
//!   mvhd                    real creation time; duration filled in on a clean stop
//!   trak (video, id 1)      stsd: one avc1/hvc1 entry per distinct parameter set seen
//!   trak (audio, id 2)      stsd: one mp4a entry
//!   mvex                    trex per track (+ mehd with the total on a clean stop)
//! free                      padding: the header region has a fixed size (HEADER_SIZE)
//! moof mdat                 one pair per fragment, appended with a single write
//! moof mdat
//! ...
//! mfra                      random-access index, appended on a clean stop
//! ```
//!
//! Every fragment is self-contained (§8.8): `tfhd` has `default-base-is-moof`, `tfdt` gives the
//! decode time of its first sample, and `trun` lists each sample's duration, size, flags and
//! composition offset. A reader therefore needs only the header region and whole fragments,
//! which is what makes a killed recording playable up to its last complete fragment.
//!
//! The header region is rewritten in place (same size, the `free` box absorbing the difference)
//! when a new sample description appears mid-stream — before the fragment that uses it is
//! written — and once more on a clean stop to record durations.
//!
//! # Timing
//!
//! Track timescales are the RTP clock rates, and decode times come from retina's extended
//! (64-bit, wrap-free) RTP timestamps, so nothing drifts or wraps over long runs. The video
//! track starts at the first keyframe; audio is aligned to it through the RTSP `RTP-Info`
//! mapping that retina applies to both streams' timestamps.
//!
//! RTP timestamps are presentation times. With B-frames they are not monotonic in decode order,
//! so decode times are derived: the *i*-th frame in decode order is decoded at the *i*-th
//! smallest presentation time, found within a look-ahead of [`REORDER_LOOKAHEAD`] frames, and
//! each sample's composition offset (`trun` version 1, signed) is `pts - dts`. Without B-frames
//! this gives `dts == pts` exactly. A stream reordering more deeply than the look-ahead still
//! gives a valid file (decode times are kept strictly increasing) with every frame presented at
//! its own RTP time.

use std::collections::VecDeque;
use std::time::Duration;

use mp4_atom::{Atom as _, Encode as _};

use crate::codec::VideoCodec;
use crate::codec::h26x;
use crate::timing::sei::{self, FrameTiming, SenderReport};

mod index;
pub mod read;

pub use index::build_mfra;

/// Size of the header region (ftyp + moov + free) at the start of the file.
///
/// Room for dozens of parameter-set changes; a stream needing more ends the recording cleanly
/// with an error rather than writing an undecodable file.
pub const HEADER_SIZE: usize = 32 * 1024;

/// How many frames the decode-time derivation looks ahead (see the module docs).
///
/// Four covers the reordering real encoders use (x264's B-pyramid needs two, cameras with
/// B-frames one or two); it delays each frame by that many frames before it enters a fragment.
pub const REORDER_LOOKAHEAD: usize = 4;

/// At most this much audio is held while waiting for the first video keyframe.
const MAX_AUDIO_BEFORE_VIDEO: Duration = Duration::from_secs(10);

/// A forward step in a track's timestamps beyond this is a discontinuity (a camera's clock
/// reset, say), not elapsed time. Retina's own default limit, which the recorder does not
/// enforce (see `session`): the file keeps the real gap, in a new fragment.
const MAX_FORWARD_JUMP: Duration = Duration::from_secs(10);

/// A backward step beyond this is a discontinuity: the track's timeline continues where it
/// was. Smaller steps are B-frame reordering (video) or overlap (audio).
const MAX_BACKWARD_STEP: Duration = Duration::from_secs(1);

/// An audio frame that overlaps its predecessor (some servers' audio steps back ~20 ms) is moved
/// to follow it, as long as that delays it by at most this; beyond, frames are dropped until
/// the timestamps catch up. This bounds the A/V offset such corrections can build up.
const MAX_AUDIO_SHIFT: Duration = Duration::from_millis(100);

const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

/// `sample_flags` (§8.8.3.1): a sync sample depends on no other.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags`: depends on others, `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_UNIX_OFFSET_SECS: u64 = 2_082_844_800;

/// Movie timescale (mvhd, tkhd, mehd durations): milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;

/// What the recording contains, known before the first sample.
pub struct Config {
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
    /// A fragment closes once it holds this much media.
    pub fragment_duration: Duration,
    /// Write the timing SEI on every frame.
    pub timing: bool,
    /// Written into mvhd/tkhd/mdhd.
    pub creation_time: jiff::Timestamp,
}

pub struct VideoConfig {
    pub codec: VideoCodec,
    /// RTP clock rate, also the track's timescale.
    pub clock_rate: u32,
}

#[derive(Clone)]
pub struct AudioConfig {
    pub clock_rate: u32,
    pub sample_entry: mp4_atom::Codec,
}

/// A video frame as received, in decode order.
pub struct VideoInput {
    /// Presentation time: the extended RTP timestamp since the stream's start (retina's
    /// `Timestamp::elapsed`), in `clock_rate` units.
    pub pts: i64,
    pub is_sync: bool,
    /// The sample entry for this and following frames, when the parameters are new (boxed:
    /// it is rare and large, and every queued frame would otherwise carry its size).
    pub sample_entry: Option<Box<mp4_atom::Codec>>,
    pub timing: FrameTiming,
    /// Video sender reports received since the previous frame, in arrival order.
    pub sender_reports: Vec<SenderReport>,
    /// NAL units, each with a 4-byte length prefix.
    pub data: Vec<u8>,
}

/// An audio frame as received.
pub struct AudioInput {
    /// As [`VideoInput::pts`], in the audio clock rate.
    pub pts: i64,
    /// How long the frame plays, in the audio clock rate (AAC: 1024; PCM: samples per channel).
    pub samples: u32,
    pub data: Vec<u8>,
}

/// Where the muxer's bytes go: implemented by the output file.
pub trait Sink {
    /// (Re)writes the header region at the start of the file. Always [`HEADER_SIZE`] bytes.
    fn write_header(&mut self, header: &[u8]) -> std::io::Result<()>;
    /// Appends one fragment (or the final index), given as consecutive parts, in one write.
    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<()>;
}

/// Counts reported at the end of a recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub fragments: u64,
    pub sender_reports: u64,
    pub sample_descriptions: u64,
    /// Video frames before the first keyframe, which cannot be decoded.
    pub dropped_before_keyframe: u64,
    /// Audio frames from before the video's first keyframe.
    pub dropped_audio_before_start: u64,
    /// Audio frames that overlapped their predecessor by more than [`MAX_AUDIO_SHIFT`] allows.
    pub dropped_audio_backward: u64,
    /// Small backward steps in the audio timestamps, after which audio was moved later to
    /// follow the previous frame.
    pub shifted_audio: u64,
    /// Frames without content: video access units with no picture, empty audio frames.
    pub dropped_empty: u64,
    /// Discontinuities in either track's timestamps (see [`MAX_FORWARD_JUMP`]).
    pub timestamp_jumps: u64,
    /// Media time recorded, in seconds.
    pub duration_secs: f64,
}

#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    Mp4(mp4_atom::Error),
    /// The header region cannot hold all sample descriptions.
    HeaderFull {
        needed: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Mp4(e) => write!(f, "MP4 encoding failed: {e}"),
            Error::HeaderFull { needed } => write!(
                f,
                "the camera changed its video parameters too often: describing them all needs \
                 {needed} bytes of MP4 header, more than the {HEADER_SIZE} reserved"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<mp4_atom::Error> for Error {
    fn from(e: mp4_atom::Error) -> Self {
        Error::Mp4(e)
    }
}

/// A sample whose decode time is known but whose duration awaits the next sample.
struct Pending {
    dts: u64,
    cts_offset: i64,
    is_sync: bool,
    sample_description_index: u32,
    /// First sample after a forward timestamp jump: starts a new fragment.
    after_gap: bool,
    timing: FrameTiming,
    sender_reports: Vec<SenderReport>,
    data: Vec<u8>,
}

/// One track's part of the fragment being built.
#[derive(Default)]
struct TrackFragment {
    /// Decode time of the first sample.
    base_dts: u64,
    entries: Vec<mp4_atom::TrunEntry>,
    data: Vec<u8>,
    sample_description_index: u32,
}

impl TrackFragment {
    fn span(&self, next_dts: u64) -> u64 {
        next_dts.saturating_sub(self.base_dts)
    }
}

struct VideoTrack {
    codec: VideoCodec,
    clock_rate: u32,
    sample_entries: Vec<mp4_atom::Codec>,
    /// 1-based index into `sample_entries` for incoming frames; 0 until the first entry.
    current_sdi: u32,
    /// The first keyframe's pts; `None` until recording starts.
    base_pts: Option<i64>,
    /// Frames in decode order awaiting their decode time.
    window: VecDeque<Windowed>,
    /// Presentation times of `window`'s frames, sorted: the candidate decode times.
    slots: Vec<i64>,
    last_dts: Option<u64>,
    /// How far presentation lags decoding, in ticks: the reorder depth seen in the first
    /// look-ahead window, decided before the first decode time. An edit list maps the first
    /// frame's presentation back to time 0.
    presentation_delay: Option<u64>,
    prev: Option<Pending>,
    last_duration: u32,
    /// Sender reports of dropped frames, carried to the next recorded one.
    carried_reports: Vec<SenderReport>,
    /// Added to presentation times after a backward timestamp jump, to continue the timeline.
    offset: i64,
    /// Largest presentation time so far, for spotting timestamp jumps.
    max_pts: Option<i64>,
    /// The recording began at an H.265 CRA picture and has seen no IRAP picture since.
    skip_rasl: bool,
    frag: TrackFragment,
    end: u64,
}

/// A frame in the reorder window, its presentation time relative to the recording's start.
struct Windowed {
    pts: i64,
    frame: VideoInput,
    sdi: u32,
    after_gap: bool,
}

/// An audio frame whose duration awaits the next one.
struct PendingAudio {
    t: u64,
    samples: u32,
    after_gap: bool,
    data: Vec<u8>,
}

impl VideoTrack {
    /// A frame's duration where the next frame does not tell: the previous frame's.
    fn normal_duration(&self) -> u32 {
        match self.last_duration {
            0 => self.clock_rate / 10,
            d => d,
        }
    }
}

struct AudioTrack {
    clock_rate: u32,
    sample_entry: mp4_atom::Codec,
    base_pts: Option<i64>,
    /// Frames received before video started, awaiting the video's start time.
    waiting: VecDeque<AudioInput>,
    prev: Option<PendingAudio>,
    /// Added to timestamps: after a backward jump, to continue the timeline; after a small
    /// step back, to follow the previous frame (`shift` of it, bounded by [`MAX_AUDIO_SHIFT`]).
    offset: i64,
    shift: i64,
    frag: TrackFragment,
    end: u64,
}

/// Turns received frames into an initialization header and fragments.
pub struct Muxer {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    fragment_duration: Duration,
    timing: bool,
    creation_time_mp4: u64,
    sequence_number: u32,
    header_dirty: bool,
    header_written: bool,
    /// Scratch buffer for moof + mdat header, reused across fragments.
    head_buf: Vec<u8>,
    stats: Stats,
}

impl Muxer {
    pub fn new(config: Config) -> Self {
        let unix_secs = u64::try_from(config.creation_time.as_second()).unwrap_or(0);
        Muxer {
            video: config.video.map(|v| VideoTrack {
                codec: v.codec,
                clock_rate: v.clock_rate,
                sample_entries: Vec::new(),
                current_sdi: 0,
                base_pts: None,
                window: VecDeque::with_capacity(REORDER_LOOKAHEAD + 1),
                slots: Vec::with_capacity(REORDER_LOOKAHEAD + 1),
                last_dts: None,
                presentation_delay: None,
                prev: None,
                last_duration: 0,
                carried_reports: Vec::new(),
                offset: 0,
                max_pts: None,
                skip_rasl: false,
                frag: TrackFragment::default(),
                end: 0,
            }),
            audio: config.audio.map(|a| AudioTrack {
                clock_rate: a.clock_rate,
                sample_entry: a.sample_entry,
                base_pts: None,
                waiting: VecDeque::new(),
                prev: None,
                offset: 0,
                shift: 0,
                frag: TrackFragment::default(),
                end: 0,
            }),
            fragment_duration: config.fragment_duration,
            timing: config.timing,
            creation_time_mp4: unix_secs + MP4_UNIX_OFFSET_SECS,
            sequence_number: 1,
            header_dirty: true,
            header_written: false,
            head_buf: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether any sample has been written to the sink.
    pub fn has_output(&self) -> bool {
        self.header_written
    }

    /// Drops what an abandoned session left waiting, if recording has not started: its
    /// timestamps belong to another timeline.
    pub fn restart_before_start(&mut self) {
        if let Some(v) = self.video.as_mut().filter(|v| v.base_pts.is_none()) {
            v.carried_reports.clear();
            v.current_sdi = 0;
            if let Some(a) = self.audio.as_mut() {
                a.waiting.clear();
            }
        }
    }

    pub fn push_video(&mut self, frame: VideoInput, sink: &mut dyn Sink) -> Result<(), Error> {
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        if let Some(entry) = &frame.sample_entry {
            let index = match v.sample_entries.iter().position(|e| e == &**entry) {
                Some(i) => i,
                None => {
                    v.sample_entries.push((**entry).clone());
                    self.header_dirty = true;
                    self.stats.sample_descriptions += 1;
                    v.sample_entries.len() - 1
                }
            };
            v.current_sdi = index as u32 + 1;
        }
        let Some((slice_type, _)) = v.codec.first_slice(&frame.data) else {
            // No picture (filler data only, say): nothing to decode or show. Its sender reports
            // go with the next frame.
            self.stats.dropped_empty += 1;
            v.carried_reports.extend(frame.sender_reports);
            return Ok(());
        };
        let mut frame = frame;
        {
            // Retina flags only IDR pictures; any IRAP picture is a sync sample.
            frame.is_sync |= slice_type.is_irap();
            // RASL pictures lean on pictures before the CRA that starts a recording, which it
            // doesn't have: undecodable until the next IRAP picture.
            if frame.is_sync {
                v.skip_rasl = v.base_pts.is_none() && slice_type.is_cra();
            } else if v.skip_rasl && slice_type.is_rasl() {
                self.stats.dropped_before_keyframe += 1;
                v.carried_reports.extend(frame.sender_reports);
                return Ok(());
            }
        }
        if v.base_pts.is_none() {
            if !frame.is_sync || v.current_sdi == 0 || !v.codec.starts_picture(&frame.data) {
                self.stats.dropped_before_keyframe += 1;
                v.carried_reports.extend(frame.sender_reports);
                return Ok(());
            }
            v.base_pts = Some(frame.pts);
            if self.stats.dropped_before_keyframe > 0 {
                tracing::info!(
                    "dropped {} video frame(s) received before the first keyframe",
                    self.stats.dropped_before_keyframe
                );
            }
            if let Some(a) = self.audio.as_mut() {
                // Same instant on the audio clock: both timestamps count from RTP-Info's NPT 0.
                let secs_num = i128::from(frame.pts) * i128::from(a.clock_rate);
                a.base_pts = Some((secs_num / i128::from(v.clock_rate)) as i64);
            }
            self.release_waiting_audio(sink)?;
        }
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        let base = v.base_pts.unwrap_or(frame.pts);
        // Saturating: timestamps are the camera's, and a hostile one must not panic the muxer.
        let mut pts = frame.pts.saturating_sub(base).saturating_add(v.offset);
        let mut after_gap = false;
        if let Some(max) = v.max_pts {
            let forward = duration_ticks(MAX_FORWARD_JUMP, v.clock_rate) as i64;
            let backward = duration_ticks(MAX_BACKWARD_STEP, v.clock_rate) as i64;
            if pts > max.saturating_add(forward) || pts < max.saturating_sub(backward) {
                let step_secs = (pts - max) as f64 / f64::from(v.clock_rate);
                // Frames before the jump get their decode times from each other alone.
                while self.video.as_ref().is_some_and(|v| !v.window.is_empty()) {
                    self.emit_video(sink)?;
                }
                let Some(v) = self.video.as_mut() else {
                    return Ok(());
                };
                if pts < max {
                    let frame_ticks = i64::from(v.normal_duration());
                    let target = max.saturating_add(frame_ticks);
                    v.offset = v.offset.saturating_add(target.saturating_sub(pts));
                    pts = target;
                } else {
                    after_gap = true;
                }
                self.stats.timestamp_jumps += 1;
                tracing::warn!(
                    "video timestamps jumped {step_secs:+.3} s; {}",
                    if after_gap {
                        "the recording keeps the gap"
                    } else {
                        "the recording's timeline continues without it"
                    }
                );
            }
        }
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        v.max_pts = Some(v.max_pts.map_or(pts, |m| m.max(pts)));
        if !v.carried_reports.is_empty() {
            let mut reports = std::mem::take(&mut v.carried_reports);
            reports.append(&mut frame.sender_reports);
            frame.sender_reports = reports;
        }
        let sdi = v.current_sdi;
        let slot = v.slots.partition_point(|&s| s <= pts);
        v.slots.insert(slot, pts);
        v.window.push_back(Windowed {
            pts,
            frame,
            sdi,
            after_gap,
        });
        if v.window.len() > REORDER_LOOKAHEAD {
            self.emit_video(sink)?;
        }
        Ok(())
    }

    /// Moves the oldest frame of the reorder window on, with its derived decode time.
    fn emit_video(&mut self, sink: &mut dyn Sink) -> Result<(), Error> {
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        if v.presentation_delay.is_none() {
            // Frame i (decode order) is decoded at the i-th smallest pts; presentation must not
            // precede decoding, so it is delayed by the largest shortfall.
            let delay = v
                .window
                .iter()
                .zip(&v.slots)
                .map(|(w, slot)| slot - w.pts)
                .max()
                .unwrap_or(0);
            v.presentation_delay = Some(u64::try_from(delay).unwrap_or(0));
        }
        let Some(Windowed {
            pts,
            frame,
            sdi,
            after_gap,
        }) = v.window.pop_front()
        else {
            return Ok(());
        };
        let slot = if v.slots.is_empty() {
            pts
        } else {
            v.slots.remove(0)
        };
        let mut dts = u64::try_from(slot).unwrap_or(0);
        if let Some(last) = v.last_dts {
            dts = dts.max(last.saturating_add(1));
        }
        v.last_dts = Some(dts);
        let delay = v.presentation_delay.unwrap_or(0) as i64;
        let cts_offset = (pts.saturating_add(delay).saturating_sub(dts as i64))
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let pending = Pending {
            dts,
            cts_offset,
            is_sync: frame.is_sync,
            sample_description_index: sdi,
            after_gap,
            timing: frame.timing,
            sender_reports: frame.sender_reports,
            data: frame.data,
        };
        let Some(prev) = v.prev.replace(pending) else {
            return Ok(());
        };
        // Before a gap, the frame lasts as long as its predecessor, not until the next one.
        let duration = if after_gap {
            v.normal_duration()
        } else {
            u32::try_from(dts - prev.dts).unwrap_or(u32::MAX)
        };
        self.commit_video(prev, duration, sink)
    }

    fn commit_video(
        &mut self,
        sample: Pending,
        duration: u32,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let Some(v) = self.video.as_ref() else {
            return Ok(());
        };
        let frag = &v.frag;
        let fragment_ticks = duration_ticks(self.fragment_duration, v.clock_rate);
        if !frag.entries.is_empty()
            && (frag.span(sample.dts) >= fragment_ticks
                || frag.sample_description_index != sample.sample_description_index
                || sample.after_gap)
        {
            self.write_fragment(sink)?;
        }
        let timing = self.timing;
        let Some(v) = self.video.as_mut() else {
            return Ok(());
        };
        let frag = &mut v.frag;
        if frag.entries.is_empty() {
            frag.base_dts = sample.dts;
            frag.sample_description_index = sample.sample_description_index;
        }
        let start = frag.data.len();
        if timing {
            for &sr in &sample.sender_reports {
                sei::append_sender_report_sei(&mut frag.data, v.codec, sr);
            }
            sei::append_frame_sei(&mut frag.data, v.codec, sample.timing);
            self.stats.sender_reports += sample.sender_reports.len() as u64;
        }
        // Once the parameters have changed, keyframes also carry their parameter sets in-band:
        // the new sample description is the MP4 way, but some readers (ffmpeg 5.1) never switch
        // descriptions within fragments and would decode with whichever they saw last.
        if sample.is_sync && v.sample_entries.len() > 1 {
            let entry = v
                .sample_entries
                .get(sample.sample_description_index as usize - 1);
            for nal in entry.map(parameter_sets).unwrap_or_default() {
                h26x::append_length_prefixed(&mut frag.data, nal);
            }
        }
        frag.data.extend_from_slice(&sample.data);
        let size = u32::try_from(frag.data.len() - start).unwrap_or(u32::MAX);
        frag.entries.push(mp4_atom::TrunEntry {
            duration: Some(duration),
            size: Some(size),
            flags: Some(if sample.is_sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            }),
            cts: Some(sample.cts_offset),
        });
        v.last_duration = duration;
        v.end = v.end.max(sample.dts + u64::from(duration));
        self.stats.video_frames += 1;
        Ok(())
    }

    pub fn push_audio(&mut self, frame: AudioInput, sink: &mut dyn Sink) -> Result<(), Error> {
        let video_started = self.video.as_ref().is_none_or(|v| v.base_pts.is_some());
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        if !video_started {
            a.waiting.push_back(frame);
            let max = duration_ticks(MAX_AUDIO_BEFORE_VIDEO, a.clock_rate) as i64;
            while let (Some(first), Some(last)) = (a.waiting.front(), a.waiting.back()) {
                if last.pts - first.pts <= max {
                    break;
                }
                a.waiting.pop_front();
                self.stats.dropped_audio_before_start += 1;
            }
            return Ok(());
        }
        if a.base_pts.is_none() {
            a.base_pts = Some(frame.pts); // audio-only recording
        }
        self.accept_audio(frame, sink)
    }

    fn release_waiting_audio(&mut self, sink: &mut dyn Sink) -> Result<(), Error> {
        let waiting = match self.audio.as_mut() {
            Some(a) => std::mem::take(&mut a.waiting),
            None => return Ok(()),
        };
        for frame in waiting {
            self.accept_audio(frame, sink)?;
        }
        Ok(())
    }

    fn accept_audio(&mut self, frame: AudioInput, sink: &mut dyn Sink) -> Result<(), Error> {
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        if frame.data.is_empty() || frame.samples == 0 {
            self.stats.dropped_empty += 1;
            return Ok(());
        }
        let mut t = frame
            .pts
            .saturating_sub(a.base_pts.unwrap_or(frame.pts))
            .saturating_add(a.offset);
        let mut after_gap = false;
        if let Some(prev) = &a.prev {
            let prev_end = (prev.t as i64).saturating_add(i64::from(prev.samples));
            let ticks = |d| duration_ticks(d, a.clock_rate) as i64;
            if t > prev_end.saturating_add(ticks(MAX_FORWARD_JUMP))
                || t < prev_end.saturating_sub(ticks(MAX_BACKWARD_STEP))
            {
                tracing::warn!(
                    "audio timestamps jumped {:+.3} s; {}",
                    (t - prev_end) as f64 / f64::from(a.clock_rate),
                    if t > prev_end {
                        "the recording keeps the gap"
                    } else {
                        "the recording's timeline continues without it"
                    }
                );
                self.stats.timestamp_jumps += 1;
                if t < prev_end {
                    a.offset = a.offset.saturating_add(prev_end - t);
                    t = prev_end;
                } else {
                    after_gap = true;
                }
            } else if t < prev_end {
                let overlap = prev_end - t;
                if a.shift + overlap > ticks(MAX_AUDIO_SHIFT) {
                    self.stats.dropped_audio_backward += 1;
                    return Ok(());
                }
                // Later frames keep this shift: the step back was the server's, not a repeat.
                a.shift += overlap;
                a.offset += overlap;
                self.stats.shifted_audio += 1;
                t = prev_end;
            } else if t > prev_end && a.shift > 0 {
                // A hole in the timestamps: take back earlier shifts first, restoring sync.
                let back = a.shift.min(t - prev_end);
                a.shift -= back;
                a.offset -= back;
                t -= back;
            }
        }
        let Ok(t) = u64::try_from(t) else {
            self.stats.dropped_audio_before_start += 1;
            return Ok(());
        };
        let next = PendingAudio {
            t,
            samples: frame.samples,
            after_gap,
            data: frame.data,
        };
        let Some(prev) = a.prev.replace(next) else {
            return Ok(());
        };
        // Before a gap, a frame lasts as long as it plays; otherwise until the next one (a
        // small hole in the timestamps stays a hole in time, not a shift of what follows).
        let duration = if after_gap {
            prev.samples
        } else {
            u32::try_from(t - prev.t).unwrap_or(u32::MAX)
        };
        self.commit_audio(prev, duration, sink)
    }

    fn commit_audio(
        &mut self,
        sample: PendingAudio,
        duration: u32,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let t = sample.t;
        let video_present = self.video.is_some();
        let Some(a) = self.audio.as_ref() else {
            return Ok(());
        };
        // With video, fragments close on the video's clock; this only bounds a fragment
        // when video stops arriving.
        let factor = if video_present { 2 } else { 1 };
        let limit = duration_ticks(self.fragment_duration, a.clock_rate) * factor;
        if !a.frag.entries.is_empty() && (a.frag.span(t) >= limit || sample.after_gap) {
            self.write_fragment(sink)?;
        }
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        if a.frag.entries.is_empty() {
            a.frag.base_dts = t;
            a.frag.sample_description_index = 1;
        }
        a.frag.data.extend_from_slice(&sample.data);
        a.frag.entries.push(mp4_atom::TrunEntry {
            duration: Some(duration),
            size: Some(sample.data.len() as u32),
            flags: None,
            cts: None,
        });
        a.end = a.end.max(t + u64::from(duration));
        self.stats.audio_frames += 1;
        Ok(())
    }

    /// Writes everything still held as a last fragment and the final header.
    ///
    /// Returns the stats; [`Muxer::has_output`] tells whether anything was recorded.
    pub fn finish(&mut self, sink: &mut dyn Sink) -> Result<Stats, Error> {
        while self.video.as_ref().is_some_and(|v| !v.window.is_empty()) {
            self.emit_video(sink)?;
        }
        if let Some(v) = self.video.as_mut()
            && let Some(prev) = v.prev.take()
        {
            // The last frame's duration is unknown: repeat the previous one.
            let duration = v.normal_duration();
            self.commit_video(prev, duration, sink)?;
        }
        if let Some(a) = self.audio.as_mut()
            && let Some(prev) = a.prev.take()
        {
            let duration = prev.samples;
            self.commit_audio(prev, duration, sink)?;
        }
        let has_samples = |f: &TrackFragment| !f.entries.is_empty();
        if self.video.as_ref().is_some_and(|v| has_samples(&v.frag))
            || self.audio.as_ref().is_some_and(|a| has_samples(&a.frag))
        {
            self.write_fragment(sink)?;
        }
        if self.header_written {
            let header = self.header(true)?;
            sink.write_header(&header)?;
        }
        self.stats.duration_secs = self.duration_secs();
        Ok(self.stats.clone())
    }

    fn duration_secs(&self) -> f64 {
        let v = self
            .video
            .as_ref()
            .map_or(0.0, |v| v.end as f64 / f64::from(v.clock_rate));
        let a = self
            .audio
            .as_ref()
            .map_or(0.0, |a| a.end as f64 / f64::from(a.clock_rate));
        v.max(a)
    }

    /// Writes the open fragment: `moof` + `mdat` header, then each track's sample data.
    fn write_fragment(&mut self, sink: &mut dyn Sink) -> Result<(), Error> {
        if self.header_dirty || !self.header_written {
            let header = self.header(false)?;
            sink.write_header(&header)?;
            self.header_dirty = false;
            self.header_written = true;
        }
        let mut trafs = Vec::with_capacity(2);
        let mut data_lens = Vec::with_capacity(2);
        let video_included = self
            .video
            .as_ref()
            .is_some_and(|v| !v.frag.entries.is_empty());
        let audio_included = self
            .audio
            .as_ref()
            .is_some_and(|a| !a.frag.entries.is_empty());
        if let Some(v) = self.video.as_mut().filter(|_| video_included) {
            trafs.push(traf(VIDEO_TRACK_ID, &mut v.frag));
            data_lens.push(v.frag.data.len());
        }
        if let Some(a) = self.audio.as_mut().filter(|_| audio_included) {
            trafs.push(traf(AUDIO_TRACK_ID, &mut a.frag));
            data_lens.push(a.frag.data.len());
        }
        let mut moof = mp4_atom::Moof {
            mfhd: mp4_atom::Mfhd {
                sequence_number: self.sequence_number,
            },
            traf: trafs,
        };
        // Encode once to learn the moof's size, then again with the real data offsets (the
        // offset fields are present both times, so the size does not change).
        self.head_buf.clear();
        moof.encode(&mut self.head_buf)?;
        let mdat_len: usize = data_lens.iter().sum();
        let mdat_header_len = if mdat_len + 8 > u32::MAX as usize {
            16
        } else {
            8
        };
        let mut offset = self.head_buf.len() + mdat_header_len;
        for (traf, len) in moof.traf.iter_mut().zip(&data_lens) {
            if let Some(trun) = traf.trun.first_mut() {
                trun.data_offset =
                    Some(i32::try_from(offset).map_err(|_| {
                        Error::Io(std::io::Error::other("fragment larger than 2 GiB"))
                    })?);
            }
            offset += len;
        }
        self.head_buf.clear();
        moof.encode(&mut self.head_buf)?;
        mp4_atom::Header {
            kind: mp4_atom::Mdat::KIND,
            size: Some(mdat_len),
        }
        .encode(&mut self.head_buf)?;

        let video_data = self.video.as_ref().map_or(&[][..], |v| &v.frag.data[..]);
        let audio_data = self.audio.as_ref().map_or(&[][..], |a| &a.frag.data[..]);
        sink.append(&[&self.head_buf, video_data, audio_data])?;

        // Give the entry vectors back for reuse, then clear for the next fragment.
        let mut trafs = moof.traf.into_iter();
        if let Some(v) = self.video.as_mut() {
            reclaim(&mut v.frag, video_included.then(|| trafs.next()).flatten());
        }
        if let Some(a) = self.audio.as_mut() {
            reclaim(&mut a.frag, audio_included.then(|| trafs.next()).flatten());
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.stats.fragments += 1;
        Ok(())
    }

    /// Encodes ftyp + moov + free, exactly [`HEADER_SIZE`] bytes.
    fn header(&self, final_durations: bool) -> Result<Vec<u8>, Error> {
        let mut traks = Vec::new();
        let mut trexs = Vec::new();
        let mut movie_duration = 0u64;
        let t = self.creation_time_mp4;
        if let Some(v) = &self.video {
            let (width, height) = v
                .sample_entries
                .first()
                .and_then(visual_size)
                .unwrap_or((0, 0));
            let duration = if final_durations { v.end } else { 0 };
            movie_duration = movie_duration.max(to_movie_time(duration, v.clock_rate));
            let delay = v.presentation_delay.unwrap_or(0);
            traks.push(trak(TrakParams {
                track_id: VIDEO_TRACK_ID,
                media_start: delay,
                creation_time: t,
                timescale: v.clock_rate,
                duration,
                movie_duration: to_movie_time(duration, v.clock_rate),
                handler: b"vide",
                handler_name: "VideoHandler",
                width,
                height,
                sample_entries: v.sample_entries.clone(),
            }));
            trexs.push(trex(VIDEO_TRACK_ID));
        }
        if let Some(a) = &self.audio {
            let duration = if final_durations { a.end } else { 0 };
            movie_duration = movie_duration.max(to_movie_time(duration, a.clock_rate));
            traks.push(trak(TrakParams {
                track_id: AUDIO_TRACK_ID,
                media_start: 0,
                creation_time: t,
                timescale: a.clock_rate,
                duration,
                movie_duration: to_movie_time(duration, a.clock_rate),
                handler: b"soun",
                handler_name: "SoundHandler",
                width: 0,
                height: 0,
                sample_entries: vec![a.sample_entry.clone()],
            }));
            trexs.push(trex(AUDIO_TRACK_ID));
        }
        let moov = mp4_atom::Moov {
            mvhd: mp4_atom::Mvhd {
                creation_time: t,
                modification_time: t,
                timescale: MOVIE_TIMESCALE,
                duration: movie_duration,
                rate: mp4_atom::FixedPoint::new(1, 0),
                volume: mp4_atom::FixedPoint::new(1, 0),
                matrix: Default::default(),
                next_track_id: AUDIO_TRACK_ID + 1,
            },
            mvex: Some(mp4_atom::Mvex {
                mehd: final_durations.then_some(mp4_atom::Mehd {
                    fragment_duration: movie_duration,
                }),
                trex: trexs,
            }),
            trak: traks,
            ..Default::default()
        };
        let mut buf = Vec::with_capacity(HEADER_SIZE);
        mp4_atom::Ftyp {
            major_brand: b"iso5".into(),
            minor_version: 512,
            compatible_brands: vec![b"iso5".into(), b"iso6".into(), b"mp41".into()],
        }
        .encode(&mut buf)?;
        moov.encode(&mut buf)?;
        let free_header = 8;
        if buf.len() + free_header > HEADER_SIZE {
            return Err(Error::HeaderFull {
                needed: buf.len() + free_header,
            });
        }
        mp4_atom::Free {
            zeroed: mp4_atom::Zeroed::new(HEADER_SIZE - buf.len() - free_header),
        }
        .encode(&mut buf)?;
        debug_assert_eq!(buf.len(), HEADER_SIZE);
        Ok(buf)
    }
}

/// Builds a track fragment, taking the entries (they are given back after encoding).
fn traf(track_id: u32, frag: &mut TrackFragment) -> mp4_atom::Traf {
    mp4_atom::Traf {
        tfhd: mp4_atom::Tfhd {
            track_id,
            sample_description_index: Some(frag.sample_description_index),
            default_sample_flags: (track_id == AUDIO_TRACK_ID).then_some(SYNC_SAMPLE_FLAGS),
            default_base_is_moof: true,
            ..Default::default()
        },
        tfdt: Some(mp4_atom::Tfdt {
            base_media_decode_time: frag.base_dts,
        }),
        trun: vec![mp4_atom::Trun {
            data_offset: Some(0),
            samples: mp4_atom::TrunSamples::Explicit(std::mem::take(&mut frag.entries)),
        }],
        ..Default::default()
    }
}

/// Takes back a written traf's entry vector (keeping its allocation) and empties the fragment.
fn reclaim(frag: &mut TrackFragment, written: Option<mp4_atom::Traf>) {
    if let Some(mp4_atom::TrunSamples::Explicit(entries)) = written
        .and_then(|t| t.trun.into_iter().next())
        .map(|t| t.samples)
    {
        frag.entries = entries;
    }
    frag.entries.clear();
    frag.data.clear();
}

struct TrakParams {
    track_id: u32,
    /// Media time presented first: an edit list is written when it is not 0.
    media_start: u64,
    creation_time: u64,
    timescale: u32,
    duration: u64,
    movie_duration: u64,
    handler: &'static [u8; 4],
    handler_name: &'static str,
    width: u16,
    height: u16,
    sample_entries: Vec<mp4_atom::Codec>,
}

fn trak(p: TrakParams) -> mp4_atom::Trak {
    let is_video = p.handler == b"vide";
    // §8.6.6: one edit presenting the media from `media_start`. Duration 0 while recording
    // (a fragmented file's edit then extends over all fragments), the real one at the end.
    let edts = (p.media_start > 0).then(|| mp4_atom::Edts {
        elst: Some(mp4_atom::Elst {
            entries: vec![mp4_atom::ElstEntry {
                segment_duration: p.movie_duration,
                media_time: Some(p.media_start),
                media_rate: mp4_atom::FixedPoint::new(1, 0),
            }],
        }),
    });
    mp4_atom::Trak {
        edts,
        tkhd: mp4_atom::Tkhd {
            creation_time: p.creation_time,
            modification_time: p.creation_time,
            track_id: p.track_id,
            duration: p.movie_duration,
            enabled: true,
            in_movie: true,
            volume: if is_video {
                mp4_atom::FixedPoint::new(0, 0)
            } else {
                mp4_atom::FixedPoint::new(1, 0)
            },
            width: mp4_atom::FixedPoint::new(p.width, 0),
            height: mp4_atom::FixedPoint::new(p.height, 0),
            ..Default::default()
        },
        mdia: mp4_atom::Mdia {
            mdhd: mp4_atom::Mdhd {
                creation_time: p.creation_time,
                modification_time: p.creation_time,
                timescale: p.timescale,
                duration: p.duration,
                language: "und".into(),
            },
            hdlr: mp4_atom::Hdlr {
                handler: mp4_atom::FourCC::new(p.handler),
                name: p.handler_name.into(),
            },
            minf: mp4_atom::Minf {
                vmhd: is_video.then(mp4_atom::Vmhd::default),
                smhd: (!is_video).then(mp4_atom::Smhd::default),
                dinf: mp4_atom::Dinf {
                    dref: mp4_atom::Dref {
                        entries: vec![mp4_atom::DrefEntry::Url(mp4_atom::Url {
                            location: String::new(),
                        })],
                    },
                },
                stbl: mp4_atom::Stbl {
                    stsd: mp4_atom::Stsd {
                        codecs: p.sample_entries,
                    },
                    stco: Some(mp4_atom::Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

fn trex(track_id: u32) -> mp4_atom::Trex {
    mp4_atom::Trex {
        track_id,
        default_sample_description_index: 1,
        default_sample_duration: 0,
        default_sample_size: 0,
        default_sample_flags: 0,
    }
}

fn visual_size(codec: &mp4_atom::Codec) -> Option<(u16, u16)> {
    match codec {
        mp4_atom::Codec::Avc1(c) => Some((c.visual.width, c.visual.height)),
        mp4_atom::Codec::Hvc1(c) => Some((c.visual.width, c.visual.height)),
        _ => None,
    }
}

/// The parameter-set NAL units (VPS, SPS, PPS) a video sample entry carries.
fn parameter_sets(entry: &mp4_atom::Codec) -> Vec<&[u8]> {
    match entry {
        mp4_atom::Codec::Avc1(c) => c
            .avcc
            .sequence_parameter_sets
            .iter()
            .chain(&c.avcc.picture_parameter_sets)
            .map(Vec::as_slice)
            .collect(),
        mp4_atom::Codec::Hvc1(c) => c
            .hvcc
            .arrays
            .iter()
            .flat_map(|a| &a.nalus)
            .map(Vec::as_slice)
            .collect(),
        _ => Vec::new(),
    }
}

fn duration_ticks(d: Duration, clock_rate: u32) -> u64 {
    (d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u64
}

fn to_movie_time(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1))) as u64
}

/// The sample entry for 16-bit big-endian linear PCM (`twos`, QuickTime's and ISO/IEC 14496-12's
/// `AudioSampleEntry` layout), how G.711 and L16 audio are stored: see the README.
pub fn pcm_sample_entry(clock_rate: u32, channels: u16) -> Result<mp4_atom::Codec, String> {
    // The entry's rate field is 16.16 fixed point.
    let rate = u16::try_from(clock_rate)
        .map_err(|_| format!("its {clock_rate} Hz rate does not fit an MP4 audio sample entry"))?;
    Ok(mp4_atom::Codec::Twos(mp4_atom::Twos {
        audio: mp4_atom::Audio {
            data_reference_index: 1,
            channel_count: channels,
            sample_size: 16,
            sample_rate: mp4_atom::FixedPoint::new(rate, 0),
        },
        pcmc: None,
        chnl: None,
        btrt: None,
    }))
}

/// Decodes an MP4 sample entry box, as retina's `mp4_sample_entry()` builds it, into the
/// typed form the muxer writes.
pub fn sample_entry_from_bytes(bytes: &[u8]) -> Result<mp4_atom::Codec, mp4_atom::Error> {
    use mp4_atom::Decode as _;
    let codec = mp4_atom::Codec::decode(&mut &bytes[..])?;
    if let mp4_atom::Codec::Unknown(kind, _) = codec {
        return Err(mp4_atom::Error::UnexpectedBox(kind));
    }
    Ok(codec)
}
