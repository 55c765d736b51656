//! The file being written: its header region, the fragment being built, when to cut the
//! fragment, and, when segmenting, when to end the file. This is all that a new file starts
//! afresh; the tracks and their timelines go on.
//!
//! A segment ends before the first sync sample (video keyframe; for audio alone, any sample)
//! received at or after the next wall-clock boundary: a multiple of the segment duration from
//! local midnight, as ffmpeg's `-segment_atclocktime` cuts.

use std::time::Duration;

use super::audio::AudioSample;
use super::fragment::{self, TrackFragment};
use super::header::{self, Span, Times};
use super::timeline::duration_ticks;
use super::tracks::Tracks;
use super::video::VideoSample;
use super::{Error, FileSummary, Sink, Stats, Stored};

use crate::ntp;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_UNIX_OFFSET_SECS: u64 = 2_082_844_800;

/// A sample whose duration is known, ready for the file.
pub(super) enum Ready {
    Video(VideoSample),
    Audio(AudioSample),
}

impl Ready {
    /// When it was received (NTP format).
    fn recv(&self) -> u64 {
        match self {
            Ready::Video(s) => s.timing.recv,
            Ready::Audio(s) => s.recv,
        }
    }
}

/// How files are made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FilePlan {
    /// A fragment closes once it holds this much media.
    pub fragment_duration: Duration,
    /// End a file at each multiple of this from local midnight (at the next sync sample).
    pub segment_duration: Option<Duration>,
}

pub(crate) struct FileState {
    plan: FilePlan,
    /// Seconds since the MP4 epoch.
    creation_time: u64,
    sequence_number: u32,
    /// The track's video sample descriptions this file uses, in the order its header lists
    /// them (the file's sample description index is the position plus one).
    entries: Vec<usize>,
    /// How many of `entries` the header on disk lists; `None` before it is first written
    /// (nothing is in the file yet).
    described: Option<usize>,
    video: TrackFragment,
    audio: TrackFragment,
    /// The file's first video sample: decode time, and the media time it is presented at.
    video_first: Option<(u64, u64)>,
    /// The file's first audio sample's time.
    audio_first: Option<u64>,
    /// When the file's first and latest samples were received (NTP format).
    first_recv: Option<u64>,
    last_recv: u64,
    /// When the file ends, if segmenting (NTP format).
    ends_at: Option<u64>,
    /// A fragment was dropped (the disk was full): video resumes at a keyframe, as nothing
    /// before one could be decoded without the frames lost.
    resume_at_keyframe: bool,
    /// Scratch buffer for moof + mdat header, reused across fragments.
    head_buf: Vec<u8>,
}

impl FileState {
    pub(super) fn new(plan: FilePlan, creation_time: jiff::Timestamp) -> FileState {
        let unix_secs = u64::try_from(creation_time.as_second()).unwrap_or(0);
        FileState {
            plan,
            creation_time: unix_secs + MP4_UNIX_OFFSET_SECS,
            sequence_number: 1,
            entries: Vec::new(),
            described: None,
            video: TrackFragment::default(),
            audio: TrackFragment::default(),
            video_first: None,
            audio_first: None,
            first_recv: None,
            last_recv: 0,
            ends_at: None,
            resume_at_keyframe: false,
            head_buf: Vec::new(),
        }
    }

    /// The state of the file after this one, which `finish` has ended. It takes over this
    /// file's fragment buffers, empty but with a fragment's capacity: growing them anew for
    /// each file, around what the index read-back left, crept the writer threads' malloc
    /// arenas up at every rollover (bench/soak.sh measures it).
    pub(super) fn next(&mut self, creation_time: jiff::Timestamp) -> FileState {
        let mut next = FileState::new(self.plan, creation_time);
        next.video.take_buffers(&mut self.video);
        next.audio.take_buffers(&mut self.audio);
        std::mem::swap(&mut next.head_buf, &mut self.head_buf);
        next
    }

    /// Whether anything has been written to the sink.
    pub(super) fn has_output(&self) -> bool {
        self.described.is_some()
    }

    /// Whether the file must end before `sample`: it is a sync sample received at or after
    /// the segment's end.
    pub(super) fn ends_before(&self, sample: &Ready, tracks: &Tracks) -> bool {
        let cut_point = match sample {
            Ready::Video(s) => s.is_sync,
            Ready::Audio(_) => tracks.video.is_none(),
        };
        cut_point && self.ends_at.is_some_and(|end| sample.recv() >= end)
    }

    /// Adds a sample, first closing the open fragment if it must be.
    pub(super) fn add(
        &mut self,
        sample: Ready,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        let recv = sample.recv();
        if self.first_recv.is_none() {
            self.first_recv = Some(recv);
            self.ends_at = self.plan.segment_duration.map(|d| next_boundary(recv, d));
        }
        // The file's frames are its video frames' times when it has video: those the file
        // itself records.
        if matches!(sample, Ready::Video(_)) || tracks.video.is_none() {
            self.last_recv = self.last_recv.max(recv);
        }
        match (sample, &tracks.video) {
            (Ready::Video(s), Some(_)) => self.add_video(s, tracks, sink, stats)?,
            (Ready::Video(_), None) => {}
            (Ready::Audio(s), _) => {
                if self.cuts_before(s.t, s.after_gap, tracks) {
                    self.write_fragment(tracks, sink, stats)?;
                }
                self.audio_first.get_or_insert(s.t);
                self.audio.push_audio(s);
            }
        }
        Ok(())
    }

    fn add_video(
        &mut self,
        mut s: VideoSample,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        let Some(video) = &tracks.video else {
            return Ok(());
        };
        // The file's own numbering of the sample descriptions it uses.
        let track_index = (s.sample_description_index as usize).saturating_sub(1);
        let position = match self.entries.iter().position(|&e| e == track_index) {
            Some(p) => p,
            None => {
                self.entries.push(track_index);
                self.entries.len() - 1
            }
        };
        s.sample_description_index = position as u32 + 1;
        let new_description = self.video.sample_description_index != s.sample_description_index;
        if !self.video.is_empty() && (new_description || self.cuts_before_video(&s, tracks)) {
            self.write_fragment(tracks, sink, stats)?;
        }
        // After that write too: a fragment that did not fit leaves nothing to depend on.
        if self.resume_at_keyframe {
            if !s.is_sync {
                stats.dropped_disk_full += 1;
                return Ok(());
            }
            self.resume_at_keyframe = false;
        }
        // The first frame of a file and of a session name the session.
        if s.starts_session || self.video_first.is_none() {
            s.timing.conn = Some(tracks.conn);
        }
        let presented = s.dts.saturating_add_signed(s.cts_offset);
        self.video_first.get_or_insert((s.dts, presented));
        // Once the file has more than one description, keyframes carry their parameter sets
        // in-band too: some readers (ffmpeg 5.1) never switch descriptions within fragments.
        let in_band = (s.is_sync && self.entries.len() > 1)
            .then(|| video.sample_entries.get(track_index))
            .flatten();
        stats.sender_reports += self
            .video
            .push_video(s, video.codec, in_band, tracks.timing);
        Ok(())
    }

    /// Whether the open fragment closes before a video sample: when it is long enough, or the
    /// sample follows a gap.
    fn cuts_before_video(&self, s: &VideoSample, tracks: &Tracks) -> bool {
        let rate = tracks.video.as_ref().map_or(90_000, |v| v.clock_rate);
        self.video.span(s.dts) >= duration_ticks(self.plan.fragment_duration, rate) || s.after_gap
    }

    /// Whether the open fragment closes before an audio sample at `t`. With video, fragments
    /// close on the video's clock; the audio's own limit (twice as long) only bounds a fragment
    /// when video stops arriving.
    fn cuts_before(&self, t: u64, after_gap: bool, tracks: &Tracks) -> bool {
        let Some(audio) = &tracks.audio else {
            return false;
        };
        let factor = if tracks.video.is_some() { 2 } else { 1 };
        let limit = duration_ticks(self.plan.fragment_duration, audio.clock_rate) * factor;
        !self.audio.is_empty() && (self.audio.span(t) >= limit || after_gap)
    }

    /// Writes the open fragment, after the header if it does not yet describe every sample
    /// description in use (the first header begins the file at the sink).
    fn write_fragment(
        &mut self,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        if self.described.is_none() {
            sink.begin_file(self.first_recv.unwrap_or(0))?;
        }
        if self.described != Some(self.entries.len()) {
            // On a full disk the sink keeps the header to write before the next fragment.
            sink.write_header(&header::encode(tracks, &self.times(tracks, false))?)?;
            self.described = Some(self.entries.len());
        }
        let frames = (self.video.entries.len(), self.audio.entries.len());
        let (video, audio, head) = (&mut self.video, &mut self.audio, &mut self.head_buf);
        match fragment::write(self.sequence_number, video, audio, head, sink)? {
            Stored::Written => {
                self.sequence_number = self.sequence_number.wrapping_add(1);
                stats.fragments += 1;
                stats.video_frames += frames.0 as u64;
                stats.audio_frames += frames.1 as u64;
            }
            Stored::Dropped => {
                stats.dropped_disk_full += (frames.0 + frames.1) as u64;
                self.resume_at_keyframe = tracks.video.is_some();
                if self.sequence_number == 1 {
                    // Nothing of the file is on disk: it starts with what is written first.
                    self.video_first = None;
                    self.audio_first = None;
                }
            }
        }
        Ok(())
    }

    /// Writes what is left as a last fragment and the header with the durations, and ends the
    /// file at the sink.
    pub(super) fn finish(
        &mut self,
        tracks: &Tracks,
        sink: &mut dyn Sink,
        stats: &mut Stats,
    ) -> Result<(), Error> {
        if !self.video.is_empty() || !self.audio.is_empty() {
            self.write_fragment(tracks, sink, stats)?;
        }
        let secs = |end: u64, rate: u32| end as f64 / f64::from(rate);
        let video = tracks
            .video
            .as_ref()
            .map_or(0.0, |v| secs(self.video.end, v.clock_rate));
        let audio = tracks
            .audio
            .as_ref()
            .map_or(0.0, |a| secs(self.audio.end, a.clock_rate));
        stats.duration_secs = stats.duration_secs.max(video.max(audio));
        if self.has_output() {
            sink.write_header(&header::encode(tracks, &self.times(tracks, true))?)?;
            stats.files += 1;
            sink.end_file(&FileSummary {
                first_recv: self.first_recv.unwrap_or(0),
                last_recv: self.last_recv,
            })?;
        }
        Ok(())
    }

    fn times(&self, tracks: &Tracks, finished: bool) -> Times<'_> {
        let video = self.video_first.map(|(dts, presented)| Span {
            first_dts: dts,
            media_start: presented,
            end: self.video.end,
        });
        // Audio is presented from the instant the file's first video frame is (on the audio
        // clock, where that frame's presentation time without the reorder delay falls).
        let audio_start = match (&tracks.video, &tracks.audio, self.video_first) {
            (Some(v), Some(a), Some((_, presented))) => {
                let pts = presented.saturating_sub(v.presentation_delay.unwrap_or(0));
                (u128::from(pts) * u128::from(a.clock_rate) / u128::from(v.clock_rate.max(1)))
                    as u64
            }
            _ => self.audio_first.unwrap_or(0),
        };
        let audio = self.audio_first.map(|first| Span {
            first_dts: first,
            media_start: audio_start,
            end: self.audio.end,
        });
        Times {
            creation_time: self.creation_time,
            finished,
            entries: &self.entries,
            video,
            audio,
        }
    }
}

/// The first multiple of `every` from the local midnight of `after`'s day that comes after
/// `after`, both NTP-format wall-clock times.
pub(crate) fn next_boundary(after: u64, every: Duration) -> u64 {
    let unix = ntp::to_unix(after);
    let Ok(at) = jiff::Timestamp::from_nanosecond(unix) else {
        return u64::MAX;
    };
    let zoned = at.to_zoned(jiff::tz::TimeZone::system());
    let Ok(midnight) = zoned.start_of_day() else {
        return u64::MAX;
    };
    let since = (unix - midnight.timestamp().as_nanosecond()).max(0);
    let step = i128::try_from(every.as_nanos()).unwrap_or(i128::MAX).max(1);
    let boundary = midnight.timestamp().as_nanosecond() + (since / step + 1) * step;
    ntp::from_unix(boundary)
}
